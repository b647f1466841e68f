use clap::Parser;

fn main() {
    let cli = lakebundle::cli::args::Cli::parse();
    let exit = lakebundle::cli::run(cli);
    std::process::exit(exit.code());
}
