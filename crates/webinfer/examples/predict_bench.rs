//! temp: MobileNetV2 predict timing (native or wasm32-wasip1 under node).
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).expect("model.json");
    let n: usize = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(20);
    let options = webinfer::LoadOptions { backend: webinfer::BackendChoice::Cpu, ..Default::default() };
    let model = futures::executor::block_on(webinfer::Model::load_with(&path, &options)).unwrap();
    let shape: Vec<usize> = model.inputs()[0].shape.iter().map(|d| d.unwrap_or(1)).collect();
    let len: usize = shape.iter().product();
    let data: Vec<f32> = (0..len).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
    let x = webinfer::Tensor::new(shape, data).unwrap();
    let mut t = vec![];
    for _ in 0..n {
        let s = Instant::now();
        let y = futures::executor::block_on(model.predict(std::slice::from_ref(&x))).unwrap();
        t.push(s.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(y);
    }
    let first = t[0];
    t.sort_by(f64::total_cmp);
    println!("first {:.1} ms median {:.2} ms min {:.2} ms", first, t[t.len() / 2], t[0]);
}
