//! Benchmark placeholder: filled in by the engine owner.
fn main() {
    eprintln!("no benchmark yet");
}
