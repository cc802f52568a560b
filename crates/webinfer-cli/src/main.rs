//! `webinfer`: inspect and run TensorFlow.js models from the command line.
//!
//! ```text
//! webinfer inspect MODEL_JSON
//! webinfer predict MODEL_JSON --input X.npy [--input Y.npy ...] [--backend cpu|gpu|auto] [--out DIR] [--runs N]
//! webinfer bench MODEL_JSON [--input X.npy ...] [--backend cpu|gpu|auto] [--runs N]
//! ```
//! Every command also takes the limit options (`--max-weight-bytes N`, `--max-tensor-elements N`,
//! `--max-activation-elements N`) that raise or lower `webinfer::Limits`.
//! Any error prints one line, `webinfer: error: ...`, and exits with status 1 (2 for usage).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use webinfer::{npy, shape_text, BackendChoice, Limits, LoadOptions, Model, Tensor};

const USAGE: &str = "usage:
  webinfer inspect MODEL_JSON
  webinfer predict MODEL_JSON --input X.npy [--input Y.npy ...] [--backend cpu|gpu|auto] [--out DIR] [--runs N]
  webinfer bench MODEL_JSON [--input X.npy ...] [--backend cpu|gpu|auto] [--runs N]

  inspect   inputs and outputs (names, shapes, dtypes), layers, weight count and bytes,
            the GPU adapters found and which backend --backend (default auto) picks, and why
  predict   run the model on .npy inputs (float32 or int32, in the model's input order);
            writes DIR/output_0.npy, output_1.npy, ... (float32) when --out is given;
            prints each output's shape and first values, and the predict time
            (--runs N: predict N times and print the median)
  bench     load time, first predict and the median / min / max of N warm predicts (default 20)
            on the given inputs, or on inputs of 0.5 shaped like the model's (batch 1)

limits (every command; a model over one fails at load, or at predict for too large inputs,
with an error naming the limit):
  --max-weight-bytes N         stored bytes of all weights (default 4294967296, 4 GiB)
  --max-tensor-elements N      elements of any one weight (default 2147483648)
  --max-activation-elements N  elements of any one input, intermediate or output tensor,
                               at batch 1 on load and for the given inputs on predict
                               (default 268435456, 1 GiB of float32)";

/// Options every command takes: they set `webinfer::Limits`.
const LIMIT_FLAGS: &[&str] = &[
    "--max-weight-bytes",
    "--max-tensor-elements",
    "--max-activation-elements",
];

fn main() -> ExitCode {
    // Mesa's Vulkan loader prints an error per adapter probe when XDG_RUNTIME_DIR is unset
    // (containers, CI); point it at the temp dir so the CLI's output stays readable.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("inspect") => inspect(&args[1..]),
        Some("predict") => predict(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("--version" | "-V") => {
            println!("webinfer {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(m)) => {
            eprintln!("webinfer: {m}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(CliError::Run(m)) => {
            // One line: the message with any newlines folded.
            eprintln!("webinfer: error: {}", m.replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

enum CliError {
    Usage(String),
    Run(String),
}

impl From<webinfer::Error> for CliError {
    fn from(e: webinfer::Error) -> Self {
        CliError::Run(e.to_string())
    }
}

struct Args {
    model: PathBuf,
    inputs: Vec<PathBuf>,
    backend: BackendChoice,
    out: Option<PathBuf>,
    runs: usize,
    limits: Limits,
}

fn parse(args: &[String], allow: &[&str]) -> Result<Args, CliError> {
    let mut model = None;
    let mut a = Args {
        model: PathBuf::new(),
        inputs: vec![],
        backend: BackendChoice::Auto,
        out: None,
        runs: 1,
        limits: Limits::default(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let flag = arg.as_str();
        if flag.starts_with("--") {
            if !allow.contains(&flag) && !LIMIT_FLAGS.contains(&flag) {
                return Err(CliError::Usage(format!("unknown option {flag}")));
            }
            let value = it
                .next()
                .ok_or_else(|| CliError::Usage(format!("{flag} needs a value")))?;
            match flag {
                "--input" => a.inputs.push(value.into()),
                "--backend" => {
                    a.backend = value
                        .parse()
                        .map_err(|e: webinfer::Error| CliError::Usage(e.to_string()))?
                }
                "--out" => a.out = Some(value.into()),
                "--runs" => {
                    a.runs = value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        CliError::Usage(format!("--runs needs a positive integer, got {value}"))
                    })?
                }
                "--max-weight-bytes" => a.limits.max_total_weight_bytes = count(flag, value)?,
                "--max-tensor-elements" => a.limits.max_tensor_elements = count(flag, value)?,
                "--max-activation-elements" => {
                    a.limits.max_activation_elements = count(flag, value)?
                }
                _ => unreachable!("checked against allow"),
            }
        } else if model.is_none() {
            model = Some(PathBuf::from(arg));
        } else {
            return Err(CliError::Usage(format!("unexpected argument {arg}")));
        }
    }
    a.model = model.ok_or_else(|| CliError::Usage("MODEL_JSON is required".into()))?;
    Ok(a)
}

/// A limit's value: a positive integer.
fn count(flag: &str, value: &str) -> Result<u64, CliError> {
    value
        .parse()
        .ok()
        .filter(|&n: &u64| n > 0)
        .ok_or_else(|| CliError::Usage(format!("{flag} needs a positive integer, got {value}")))
}

fn load(a: &Args) -> Result<(Model, f64), CliError> {
    let opts = LoadOptions {
        backend: a.backend,
        limits: a.limits,
        ..LoadOptions::default()
    };
    let t = Instant::now();
    let model = futures::executor::block_on(Model::load_with(&a.model, &opts))?;
    Ok((model, t.elapsed().as_secs_f64() * 1e3))
}

fn inspect(args: &[String]) -> Result<(), CliError> {
    let a = parse(args, &["--backend"])?;
    let (model, ms) = load(&a)?;
    let s = model.stats();
    println!("model      {}", a.model.display());
    println!(
        "format     {} ({}{})",
        s.format,
        s.model_class,
        s.keras_version
            .as_deref()
            .map(|v| format!(", keras {v}"))
            .unwrap_or_default()
    );
    if let Some(g) = &s.generated_by {
        println!("generated  {g}");
    }
    if let Some(c) = &s.converted_by {
        println!("converted  {c}");
    }
    for i in model.inputs() {
        println!("input      {} {} {}", i.name, shape_text(&i.shape), i.dtype);
    }
    for o in model.outputs() {
        println!("output     {} {} {}", o.name, shape_text(&o.shape), o.dtype);
    }
    let dtypes: Vec<String> = s
        .weight_dtypes
        .iter()
        .map(|(d, n)| format!("{n} {d}"))
        .collect();
    println!(
        "weights    {} tensors, {} bytes in {} shard(s) ({})",
        s.weight_count,
        s.weight_bytes,
        s.shard_count,
        dtypes.join(", ")
    );
    let mut classes: Vec<(String, usize)> = Vec::new();
    for (_, c) in &s.layers {
        match classes.iter_mut().find(|(n, _)| n == c) {
            Some((_, k)) => *k += 1,
            None => classes.push((c.clone(), 1)),
        }
    }
    println!(
        "layers     {} ({})",
        s.layers.len(),
        classes
            .iter()
            .map(|(c, n)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "ir         {}",
        s.ops
            .iter()
            .map(|(o, n)| format!("{n} {o}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let adapters = webinfer::list_adapters();
    if adapters.is_empty() {
        println!("adapters   none (no Vulkan / Metal / DX12 / GL adapter found)");
    }
    for ad in &adapters {
        let kind = if ad.is_software {
            "software"
        } else {
            "hardware"
        };
        println!(
            "adapter    \"{}\" ({}, {}, {kind})",
            ad.name, ad.backend, ad.device_type
        );
    }
    println!(
        "backend    {} ({})",
        model.backend_name(),
        model.backend_selection()
    );
    if let Some((weights, peak)) = model.gpu_bytes() {
        println!(
            "gpu memory {weights} bytes of weights, {peak} bytes peak for intermediates (batch 1)"
        );
    }
    println!("load       {ms:.1} ms");
    Ok(())
}

fn bench(args: &[String]) -> Result<(), CliError> {
    let mut a = parse(args, &["--input", "--backend", "--runs"])?;
    if !args.iter().any(|x| x == "--runs") {
        a.runs = 20;
    }
    let (model, load_ms) = load(&a)?;
    let inputs: Vec<Tensor> = if a.inputs.is_empty() {
        model
            .inputs()
            .iter()
            .map(|i| {
                let shape: Vec<usize> = i.shape.iter().map(|d| d.unwrap_or(1)).collect();
                Tensor::new(shape.clone(), vec![0.5; shape.iter().product()])
                    .map_err(|e| CliError::Run(e.to_string()))
            })
            .collect::<Result<_, _>>()?
    } else {
        read_inputs(&a.inputs)?
    };
    let time = |n: usize| -> Result<Vec<f64>, CliError> {
        (0..n)
            .map(|_| {
                let t = Instant::now();
                futures::executor::block_on(model.predict(&inputs))?;
                Ok(t.elapsed().as_secs_f64() * 1e3)
            })
            .collect()
    };
    let first = time(1)?[0];
    let mut warm = time(a.runs)?;
    warm.sort_by(f64::total_cmp);
    let median = warm[warm.len() / 2];
    println!("model    {}", a.model.display());
    println!("backend  {}", model.backend_name());
    println!("load     {load_ms:.1} ms");
    println!("first    {first:.2} ms");
    println!(
        "warm     median {median:.2} ms  min {:.2} ms  max {:.2} ms  over {} runs",
        warm[0],
        warm[warm.len() - 1],
        warm.len()
    );
    Ok(())
}

fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Tensor>, CliError> {
    paths
        .iter()
        .map(|p| {
            let bytes =
                std::fs::read(p).map_err(|e| CliError::Run(format!("{}: {e}", p.display())))?;
            npy::from_bytes(&bytes, &p.display().to_string()).map_err(CliError::from)
        })
        .collect()
}

fn predict(args: &[String]) -> Result<(), CliError> {
    let a = parse(args, &["--input", "--backend", "--out", "--runs"])?;
    let (model, load_ms) = load(&a)?;
    if a.inputs.len() != model.inputs().len() {
        let names: Vec<String> = model
            .inputs()
            .iter()
            .map(|i| format!("{} {}", i.name, shape_text(&i.shape)))
            .collect();
        return Err(CliError::Run(format!(
            "the model takes {} input(s) ({}), {} --input given",
            names.len(),
            names.join(", "),
            a.inputs.len()
        )));
    }
    let inputs = read_inputs(&a.inputs)?;
    let mut times = Vec::with_capacity(a.runs);
    let mut outputs = Vec::new();
    for _ in 0..a.runs {
        let t = Instant::now();
        outputs = futures::executor::block_on(model.predict(&inputs))?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for (i, (o, info)) in outputs.iter().zip(model.outputs()).enumerate() {
        let head: Vec<String> = o.data().iter().take(8).map(|v| format!("{v:.6}")).collect();
        println!(
            "output_{i} {} {:?} [{}{}]",
            info.name,
            o.shape(),
            head.join(", "),
            if o.len() > 8 { ", ..." } else { "" }
        );
    }
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::Run(format!("{}: {e}", dir.display())))?;
        for (i, o) in outputs.iter().enumerate() {
            let p = dir.join(format!("output_{i}.npy"));
            std::fs::write(&p, npy::to_bytes(o))
                .map_err(|e| CliError::Run(format!("{}: {e}", p.display())))?;
        }
    }
    let first = times[0];
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    println!("backend {}  load {load_ms:.1} ms  predict first {first:.2} ms  median {median:.2} ms over {} run(s)", model.backend_name(), a.runs);
    Ok(())
}
