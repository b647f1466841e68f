// The loader allocates many small strings and nodes across threads; mimalloc
// is markedly faster than the system allocator for that pattern.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(not(feature = "system-alloc"))]
extern "C" {
    /// mimalloc's stable option API (linked from the `mimalloc` crate's C library).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` (the same index in mimalloc 2.1 and 3.x).
#[cfg(not(feature = "system-alloc"))]
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

fn main() {
    #[cfg(not(feature = "system-alloc"))]
    tune_allocator();
    #[cfg(not(feature = "system-alloc"))]
    let exit = lakebundle::cli::main_with(keep_freed_pages);
    #[cfg(feature = "system-alloc")]
    let exit = lakebundle::cli::main();
    std::process::exit(exit.code());
}

/// For a command that only reads and exits: freed pages stay with the
/// allocator for reuse. A no-op plan of 10,000 resources took 118,000 page
/// faults with them returned at once and 71,000 kept (system time 0.8 s →
/// 0.5 s, peak RSS +15 MB). An explicit MIMALLOC_PURGE_DELAY still wins.
#[cfg(not(feature = "system-alloc"))]
fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option of the allocator, valid at any time.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

#[cfg(not(feature = "system-alloc"))]
fn tune_allocator() {
    // Return freed pages to the OS at once: the loader frees whole trees
    // between phases, and reusing them keeps peak memory (and the cost of
    // faulting in fresh pages) down.
    // An explicit MIMALLOC_PURGE_DELAY in the environment still wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option of the allocator, valid at any time.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    // No transparent huge pages: mimalloc asks for them on its arenas, and
    // each first touch then zeroes 2 MB. A no-op plan of 1,000 resources
    // spent 40% of its CPU time there (sys time 0.33 s → 0.12 s without,
    // peak RSS 96 → 74 MB). An explicit MIMALLOC_ALLOW_THP still wins.
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: a plain process flag; no pointers are passed.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}
