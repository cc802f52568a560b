//! The WebAssembly module's stack: 256 KiB instead of rustc's default 1 MiB. The stack is the
//! first region of the module's memory, and WebAssembly memory never shrinks, so every page
//! that loads webinfer pays for it in full. Measured high-water marks in Chromium (the lowest
//! stack byte written, after: MobileNetV2 and InceptionV3 loaded and run on the CPU and on
//! WebGPU, a graph-model, dense_heavy on WebGPU): 16 KiB; a model.json nested 200 deep (serde
//! stops at 128): 42 KiB. Rust places the stack first (`--stack-first`), so an overflow is
//! an out-of-bounds trap that the call's guard reports, never a silent overwrite of data.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=262144");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
