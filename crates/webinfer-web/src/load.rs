//! `loadLayersModel(url, options)`: the options, the events, and the load itself
//! (`webinfer-loader` for the bytes, `webinfer::ModelBuilder`, fed as the shards stream in, for the model).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use webinfer::{BackendChoice, Limits};
use webinfer_loader::{CachePolicy, LoadError, LoadEvent, Progress, Warning};

use crate::js;
use crate::model::LayersModel;

#[wasm_bindgen(module = "/src/events.js")]
extern "C" {
    #[wasm_bindgen(js_name = progressEvent)]
    fn progress_event(
        loaded_bytes: f64,
        total_bytes: f64,
        fraction: f64,
        url: &str,
        from_cache: bool,
        phase: &str,
    ) -> JsValue;
}

/// Loads a tfjs layers-model: `model.json` at `url` and its weight shards.
///
/// Resolves to a [`LayersModel`]; rejects with an `Error` naming the URL (and HTTP status)
/// or the layer at fault. See `LoadOptions` in the TypeScript types for the options.
#[wasm_bindgen(js_name = loadLayersModel, unchecked_return_type = "Promise<LayersModel>")]
pub fn load_layers_model(
    #[wasm_bindgen(unchecked_param_type = "string | URL")] url: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: JsValue,
) -> Promise {
    crate::install_panic_hook();
    crate::guard::promise("loadLayersModel", async move {
        load(url, options).await.map(JsValue::from)
    })
}

/// Loads a tfjs graph-model (the converter's output): same options, progress and cache as
/// [`load_layers_model`]; the format is read from `model.json` either way, so both functions
/// accept both kinds. `predict` also takes named inputs: `predict({input: data})`.
#[wasm_bindgen(js_name = loadGraphModel, unchecked_return_type = "Promise<LayersModel>")]
pub fn load_graph_model(
    #[wasm_bindgen(unchecked_param_type = "string | URL")] url: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: JsValue,
) -> Promise {
    load_layers_model(url, options)
}

/// The options of one load, read from JavaScript.
#[derive(Clone)]
pub(crate) struct WebLoadOptions {
    /// The highest `loadedBytes` reported: a load retried after a corrupt cache
    /// entry reports nothing below it, so progress never goes back.
    reported: std::cell::Cell<u64>,
    backend: BackendChoice,
    cache: CachePolicy,
    weight_path_prefix: Option<String>,
    on_progress: Option<Function>,
    on_warning: Option<Function>,
    limits: Limits,
    gpu_stream_min_bytes: u64,
}

impl WebLoadOptions {
    /// The same load on the CPU, without the page's callbacks: how a model whose weights
    /// lived on a lost GPU is loaded again (from the cache when it is on).
    pub(crate) fn for_reload_on_cpu(&self) -> WebLoadOptions {
        WebLoadOptions {
            reported: std::cell::Cell::new(0),
            backend: BackendChoice::Cpu,
            on_progress: None,
            on_warning: None,
            ..self.clone()
        }
    }

    fn parse(options: &JsValue) -> Result<Self, String> {
        const WHAT: &str = "options";
        js::check_options(options, WHAT)?;
        let mut parsed = WebLoadOptions {
            reported: std::cell::Cell::new(0),
            backend: BackendChoice::Auto,
            cache: CachePolicy::default(),
            weight_path_prefix: None,
            on_progress: None,
            on_warning: None,
            limits: Limits::default(),
            gpu_stream_min_bytes: webinfer::LoadOptions::default().gpu_stream_min_bytes,
        };
        if options.is_undefined() || options.is_null() {
            return Ok(parsed);
        }
        if let Some(name) = js::string_field(options, "backend", WHAT)? {
            parsed.backend = parse_backend(&name)?;
        }
        if let Some(enabled) = js::bool_field(options, "cache", WHAT)? {
            parsed.cache.enabled = enabled;
        }
        if let Some(force) = js::bool_field(options, "forceReload", WHAT)? {
            parsed.cache.force_reload = force;
        }
        parsed.cache.namespace = js::string_field(options, "namespace", WHAT)?;
        parsed.weight_path_prefix = js::string_field(options, "weightPathPrefix", WHAT)?;
        parsed.on_progress = js::function_field(options, "onProgress", WHAT)?;
        parsed.on_warning = js::function_field(options, "onWarning", WHAT)?;
        if let Some(limits) = js::field(options, "limits", WHAT)? {
            parsed.limits = parse_limits(&limits)?;
        }
        if let Some(v) = js::field(options, "gpuStreamMinBytes", WHAT)? {
            parsed.gpu_stream_min_bytes = match v.as_f64() {
                Some(n) if n == f64::INFINITY => u64::MAX,
                Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= 9007199254740991.0 => n as u64,
                _ => {
                    return Err(format!(
                        "options.gpuStreamMinBytes must be a whole number of bytes >= 0 (or \
                         Infinity to stream nothing), got {}",
                        js::describe(&v)
                    ))
                }
            };
        }
        Ok(parsed)
    }

    /// Hands one loader event to the page. A callback that throws is reported on the
    /// console and does not stop the load.
    fn dispatch(&self, event: &LoadEvent) {
        match event {
            LoadEvent::Progress(p) => {
                if p.loaded_bytes < self.reported.get() {
                    return;
                }
                self.reported.set(p.loaded_bytes);
                if let Some(f) = &self.on_progress {
                    call(f, "onProgress", &progress_js(p));
                }
            }
            LoadEvent::Warning(w) => match &self.on_warning {
                Some(f) => call(f, "onWarning", &warning_js(w)),
                None => web_sys::console::warn_1(&format!("webinfer: {}", w.message).into()),
            },
        }
    }
}

/// `options.limits`: `{maxTotalWeightBytes, maxTensorElements, ...}` over the defaults.
fn parse_limits(v: &JsValue) -> Result<Limits, String> {
    if !v.is_object() || v.is_function() || v.is_instance_of::<js_sys::Array>() {
        return Err(format!(
            "options.limits must be an object such as {{maxTotalWeightBytes: 100e6}}, got {}",
            js::describe(v)
        ));
    }
    let mut limits = Limits::default();
    let keys = js_sys::Object::keys(v.unchecked_ref::<js_sys::Object>());
    for key in keys.iter().filter_map(|k| k.as_string()) {
        let Some(value) = js::field(v, &key, "options.limits")? else {
            continue; // undefined / null: the default
        };
        let number = value.as_f64().ok_or_else(|| {
            format!(
                "options.limits.{key} must be a number, got {}",
                js::describe(&value)
            )
        })?;
        crate::limits::set(&mut limits, &key, number)?;
    }
    Ok(limits)
}

/// The JavaScript names of the backends: `"auto"`, `"webgpu"` (also `"gpu"`), `"cpu"`.
pub(crate) fn parse_backend(name: &str) -> Result<BackendChoice, String> {
    match name {
        "auto" => Ok(BackendChoice::Auto),
        "webgpu" | "gpu" => Ok(BackendChoice::Gpu),
        "cpu" => Ok(BackendChoice::Cpu),
        other => Err(format!(
            "options.backend must be \"auto\", \"webgpu\" or \"cpu\", got \"{other}\""
        )),
    }
}

/// What `model.backend` reports for a facade backend name.
pub(crate) fn backend_js_name(facade_name: &str) -> &'static str {
    match facade_name {
        "gpu" => "webgpu",
        _ => "cpu",
    }
}

fn call(f: &Function, name: &str, arg: &JsValue) {
    if let Err(thrown) = f.call1(&JsValue::UNDEFINED, arg) {
        web_sys::console::error_2(
            &format!("webinfer: the {name} callback threw (the load goes on):").into(),
            &thrown,
        );
    }
}

fn progress_js(p: &Progress) -> JsValue {
    progress_event(
        p.loaded_bytes as f64,
        p.total_bytes as f64,
        p.fraction,
        &p.url,
        p.from_cache,
        p.phase.as_str(),
    )
}

fn warning_js(w: &Warning) -> JsValue {
    js::object(&[
        ("kind", w.kind.as_str().into()),
        ("url", w.url.as_str().into()),
        ("message", w.message.as_str().into()),
    ])
}

/// The model URL: a string or a `URL` object.
fn parse_url(url: &JsValue) -> Result<String, String> {
    if let Some(s) = url.as_string() {
        if s.trim().is_empty() {
            return Err("loadLayersModel: the model URL is empty".into());
        }
        return Ok(s);
    }
    if let Some(u) = url.dyn_ref::<web_sys::Url>() {
        return Ok(u.href());
    }
    Err(format!(
        "loadLayersModel: the first argument must be the URL of model.json (a string), got {}",
        js::describe(url)
    ))
}

async fn load(url: JsValue, options: JsValue) -> Result<LayersModel, JsValue> {
    let url = parse_url(&url).map_err(js::error)?;
    let options = WebLoadOptions::parse(&options)
        .map_err(|m| js::error_at(format!("loadLayersModel({url}): {m}"), None, None))?;
    let (model, model_url) = load_model(&url, &options).await?;
    Ok(LayersModel::new(
        model,
        model_url,
        crate::model::Reload { url, options },
    ))
}

/// Loads the model at `url`: the backend first (so large weights can stream to the GPU),
/// then model.json and the shards, decoded as they arrive. Resolves to the model and the
/// canonical model.json URL.
pub(crate) async fn load_model(
    url: &str,
    options: &WebLoadOptions,
) -> Result<(webinfer::Model, String), JsValue> {
    let url = url.to_string();
    let options = options.clone();
    // What earlier loads were still writing is in the cache before this one looks.
    crate::cache::settle_writes().await;

    // The load runs as its own task: it hands the model over as soon as every byte is
    // in and checked, then finishes the cache writes the browser is still committing
    // (a failed one is a warning). From that moment on it is tracked, so `whenCached()`
    // and later loads wait for those writes (never for a download still running).
    let (tx, rx) = handover();
    let task_url = url.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let writes = crate::cache::Writes::new();
        let url = task_url;
        let loader = webinfer_loader::browser::browser_loader();
        // The loader checks model.json against the limits before it downloads any shard.
        let loader_options = webinfer_loader::LoadOptions {
            cache: options.cache.clone(),
            weight_path_prefix: options.weight_path_prefix.clone(),
            limits: options.limits,
            ..Default::default()
        };
        let model_options = webinfer::LoadOptions {
            backend: options.backend,
            limits: options.limits,
            gpu_stream_min_bytes: options.gpu_stream_min_bytes,
        };
        let mut tx = Some(tx);
        // What errors about the model (not about a download) are prefixed with.
        let model_url = || {
            webinfer_loader::Transport::canonical_url(
                &webinfer_loader::browser::BrowserTransport::new(),
                &url,
            )
        };
        // The backend before any byte: on a GPU, large kernels go straight to its memory.
        let backend = match webinfer::Backend::choose(options.backend).await {
            Ok(b) => b,
            Err(e) => {
                if let Some(tx) = tx.take() {
                    tx.send(Err(model_error(&model_url(), &e, &options.limits)));
                }
                return;
            }
        };
        // Unknown layers and oversized models are refused once model.json is parsed,
        // before any shard is requested; the shard bytes are decoded as they arrive.
        let mut refused: Option<webinfer::Error> = None;
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let result = loader
                .load_into_ready(
                    &url,
                    &loader_options,
                    &mut |event| options.dispatch(event),
                    // The loader has parsed model.json (with the same limits): no second parse.
                    |_, parsed| {
                        let built =
                            webinfer::ModelBuilder::from_model_json(parsed.clone(), &model_options)
                                .and_then(|mut b| b.use_backend(backend.clone()).map(|_| b));
                        match built {
                            Ok(builder) => Ok(Building(builder)),
                            Err(e) => {
                                refused = Some(e);
                                Err(())
                            }
                        }
                    },
                    &mut |loaded, Building(builder)| {
                        writes.track();
                        if let Some(tx) = tx.take() {
                            tx.send(Ok(Ready {
                                model_url: loaded.model_url.clone(),
                                builder,
                                limits: options.limits,
                            }));
                        }
                    },
                )
                .await;
            // A cached shard that turned out corrupt halfway through has been evicted:
            // one more load fetches it (progress events stay monotonic, see dispatch).
            match result {
                Err(webinfer_loader::LoadIntoError::Load(LoadError::CacheCorrupt { .. }))
                    if attempt == 1 => {}
                other => break other,
            }
        };
        drop(writes);
        let error = match result {
            Ok(_) => return,
            Err(webinfer_loader::LoadIntoError::Load(e)) => load_error(&e, &options.limits),
            Err(webinfer_loader::LoadIntoError::Sink(())) => match &refused {
                Some(e) => model_error(&model_url(), e, &options.limits),
                None => js::error(format!("loadLayersModel({url}): the model was refused")),
            },
        };
        if let Some(tx) = tx.take() {
            tx.send(Err(error));
        }
    });
    let ready = rx.receive(&url).await?;
    let model_url = ready.model_url;
    let model = ready
        .builder
        .finish()
        .await
        .map_err(|e| model_error(&model_url, &e, &ready.limits))?;
    Ok((model, model_url))
}

/// The load task's result, handed to the caller once (the task's side of [`handover`]).
struct Sender {
    slot: Rc<RefCell<Option<Result<Ready, JsValue>>>>,
    _done: js::Done,
}

impl Sender {
    /// Hands `result` over; the receiver wakes as this is dropped.
    fn send(self, result: Result<Ready, JsValue>) {
        *self.slot.borrow_mut() = Some(result);
    }
}

/// The caller's side of [`handover`].
struct Receiver {
    slot: Rc<RefCell<Option<Result<Ready, JsValue>>>>,
    done: Promise,
}

impl Receiver {
    /// The result, once the task has sent it (or an error if it ended without one).
    async fn receive(self, url: &str) -> Result<Ready, JsValue> {
        let _ = wasm_bindgen_futures::JsFuture::from(self.done).await;
        let sent = self.slot.borrow_mut().take();
        sent.unwrap_or_else(|| {
            Err(js::error(format!(
                "loadLayersModel({url}): the load was abandoned"
            )))
        })
    }
}

/// A one-shot channel from the load task to its caller, on a JS promise ([`js::Done`]) rather
/// than futures' channel (one less piece of its code in the module).
fn handover() -> (Sender, Receiver) {
    let slot = Rc::new(RefCell::new(None));
    let done = js::Done::new();
    let receiver = Receiver {
        slot: slot.clone(),
        done: done.promise().clone(),
    };
    (Sender { slot, _done: done }, receiver)
}

/// What the load task hands over once every byte is in.
struct Ready {
    model_url: String,
    builder: webinfer::ModelBuilder,
    limits: Limits,
}

/// The model being built, as the loader's sink: shard bytes go to its decoder.
struct Building(webinfer::ModelBuilder);

impl webinfer_loader::ShardSink for Building {
    fn write(
        &mut self,
        file: usize,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), webinfer_tfjs::FormatError> {
        self.0.decoder().write(file, offset, bytes)?;
        // The last byte of a file whose length was known (from the manifest or the
        // response's Content-Length) completes the weights: lower the graph now, while
        // the browser is still closing the body stream (measured on MobileNetV2 in
        // Chromium: the end of a stream comes 1-5 ms after its last byte).
        self.0.build_now();
        Ok(())
    }
    fn set_length(&mut self, file: usize, length: u64) -> Result<(), webinfer_tfjs::FormatError> {
        self.0.decoder().set_file_length(file, length)?;
        // Or the last length is in (a file's end, when its length was not known before):
        // lower the graph now, while the browser is still finishing the cache writes the
        // loader awaits.
        self.0.build_now();
        Ok(())
    }
}

/// A loader failure: its message already names the URL (and status); a limit names the
/// option to raise.
fn load_error(e: &LoadError, limits: &Limits) -> JsValue {
    let status = match e {
        LoadError::Http { status, .. } => Some(*status),
        _ => None,
    };
    let message = match e {
        LoadError::Format {
            source: webinfer_tfjs::FormatError::Limit { what, limit, .. },
            ..
        } => crate::limits::explain(
            &e.to_string(),
            crate::limits::field_for_error(limits, what, *limit),
            limits,
        ),
        _ => e.to_string(),
    };
    js::error_at(message, e.url(), status)
}

/// A failure to build the model from bytes that loaded fine: prefixed with the model URL; a
/// limit names the option to raise.
fn model_error(model_url: &str, e: &webinfer::Error, limits: &Limits) -> JsValue {
    let message = match e {
        webinfer::Error::Format {
            path,
            source: source @ webinfer_tfjs::FormatError::Limit { what, limit, .. },
        } => {
            let field = crate::limits::field_for_error(limits, what, *limit);
            let at = if path == "model.json" {
                String::new()
            } else {
                format!("weights in {path}: ")
            };
            crate::limits::explain(&format!("{model_url}: {at}{source}"), field, limits)
        }
        webinfer::Error::Core(core @ webinfer::CoreError::ActivationLimit { .. }) => {
            let text = core.to_string();
            crate::limits::explain(
                &format!("{model_url}: {text}"),
                crate::limits::field_for_error(limits, &text, limits.max_activation_elements),
                limits,
            )
        }
        webinfer::Error::Format { path, source } if path == "model.json" => {
            format!("{model_url}: {source}")
        }
        webinfer::Error::Format { path, source } => {
            format!("{model_url}: weights in {path}: {source}")
        }
        webinfer::Error::BackendUnavailable { requested, reason } => {
            let name = if requested == "gpu" {
                "webgpu"
            } else {
                requested
            };
            format!("{model_url}: backend \"{name}\" is not available: {reason}")
        }
        webinfer::Error::GraphModelsNotBuilt { .. } => format!(
            "{model_url}: a graph-model, and the module init({{graphModels: false}}) loaded runs \
             layers-models only: call init() without graphModels: false to load graph-models"
        ),
        other => format!("{model_url}: {other}"),
    };
    js::error_at(message, Some(model_url), None)
}
