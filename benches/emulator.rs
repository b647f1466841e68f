//! Benchmark placeholder: filled in by the emulator owner.
fn main() {
    eprintln!("no benchmark yet");
}
