//! Benchmark placeholder: filled in by the validate owner.
fn main() {
    eprintln!("no benchmark yet");
}
