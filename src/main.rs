use clap::Parser;

// The loader allocates many small strings and nodes across threads; mimalloc
// is markedly faster than the system allocator for that pattern.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = lakebundle::cli::args::Cli::parse();
    let exit = lakebundle::cli::run(cli);
    std::process::exit(exit.code());
}
