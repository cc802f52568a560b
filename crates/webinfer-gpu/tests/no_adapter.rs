//! With no driver at all, `GpuBackend::new` is an error, not a panic. (Its own test binary:
//! it hides the Vulkan and EGL drivers through the loaders' environment variables.)

use webinfer_gpu::{GpuBackend, GpuError};

#[test]
fn no_driver_is_no_adapter() {
    if cfg!(not(target_os = "linux")) {
        return;
    }
    // Read by the Vulkan loader and libglvnd when wgpu creates its instance, below.
    std::env::set_var("VK_ICD_FILENAMES", "/nonexistent.json");
    std::env::set_var("VK_DRIVER_FILES", "/nonexistent.json");
    std::env::set_var("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent.json");
    match futures::executor::block_on(GpuBackend::new(true)) {
        Err(GpuError::NoAdapter(m)) => eprintln!("no adapter, as expected: {m}"),
        Err(e) => panic!("expected NoAdapter, got {e:?}"),
        // A machine with a GPU that these variables do not hide (Metal, DX12): nothing to test.
        Ok(b) => eprintln!("an adapter is still visible: {:?}", b.adapter_info()),
    }
    assert!(webinfer_gpu::list_adapters().is_empty() || cfg!(not(target_os = "linux")));
}
