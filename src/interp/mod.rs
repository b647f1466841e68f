//! `${...}` grammar, substitution, typed whole-value references, variable cycles.
