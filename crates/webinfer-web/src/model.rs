//! `LayersModel`: a loaded model's metadata, `predict` and `dispose`.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Float32Array, Float64Array, Int16Array, Int32Array, Int8Array, Promise};
use js_sys::{Uint16Array, Uint32Array, Uint8Array, Uint8ClampedArray};
use wasm_bindgen::prelude::*;
use webinfer::{Tensor, TensorInfo};

use crate::js;
use crate::load::backend_js_name;
use crate::shapes::{self, InputSlot};
use crate::{guard, LIVE_MODELS};

/// A loaded model, counted in `memoryStats().liveModels` until released.
struct LiveModel(webinfer::Model);

impl LiveModel {
    fn new(model: webinfer::Model) -> Self {
        LIVE_MODELS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        LiveModel(model)
    }
}

impl Drop for LiveModel {
    fn drop(&mut self) {
        LIVE_MODELS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::ops::Deref for LiveModel {
    type Target = webinfer::Model;
    fn deref(&self) -> &webinfer::Model {
        &self.0
    }
}

/// How a model was loaded: what loading it again on the CPU needs when its weights lived in
/// the memory of a GPU that was lost.
pub(crate) struct Reload {
    pub url: String,
    pub options: crate::load::WebLoadOptions,
}

/// The model a `LayersModel` runs (`None` once disposed), shared with its predictions in
/// flight: one that loads the model again after a lost GPU puts the new one here.
type Slot = Rc<RefCell<Option<Rc<LiveModel>>>>;

/// A loaded model (what `loadLayersModel` resolves to).
#[wasm_bindgen(js_name = LayersModel)]
pub struct LayersModel {
    /// `None` once disposed. Predictions in flight hold their own reference.
    model: Slot,
    reload: Rc<Reload>,
    /// Set once the model was loaded again on the CPU after its GPU was lost: what happened.
    reloaded: Rc<RefCell<Option<String>>>,
    url: String,
    /// The backend when last seen (kept for `backend` after `dispose()`).
    backend: std::cell::Cell<&'static str>,
    backend_reason: String,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
}

impl LayersModel {
    pub(crate) fn new(model: webinfer::Model, url: String, reload: Reload) -> Self {
        LayersModel {
            backend: std::cell::Cell::new(backend_js_name(model.backend_name())),
            backend_reason: model.backend_selection().to_string(),
            inputs: model.inputs().to_vec(),
            outputs: model.outputs().to_vec(),
            model: Rc::new(RefCell::new(Some(Rc::new(LiveModel::new(model))))),
            reload: Rc::new(reload),
            reloaded: Rc::default(),
            url,
        }
    }

    /// The model now (`None` once disposed).
    fn current(&self) -> Option<Rc<LiveModel>> {
        self.model.borrow().clone()
    }
}

/// `model` predicts `tensors`; if its weights lived on a GPU that is lost, the model is loaded
/// again on the CPU (from the cache when it is on: nothing is downloaded), put in `slot`
/// for the later predictions (unless the model was disposed meanwhile), and predicts.
async fn predict_or_reload(
    model: Rc<LiveModel>,
    tensors: &[Tensor],
    slot: &Slot,
    reload: &Reload,
    reloaded: &RefCell<Option<String>>,
) -> Result<Vec<Tensor>, JsValue> {
    let reason = match model.predict(tensors).await {
        Err(webinfer::Error::GpuWeightsLost { reason }) => reason,
        other => return other.map_err(predict_error),
    };
    // Another prediction may have loaded it again already.
    let now = slot.borrow().clone();
    if let Some(now) = now.filter(|now| !Rc::ptr_eq(now, &model)) {
        return now.predict(tensors).await.map_err(predict_error);
    }
    let (fresh, _) = crate::load::load_model(&reload.url, &reload.options.for_reload_on_cpu())
        .await
        .map_err(|e| {
            let why = js::message(&e);
            js::error(format!(
                "predict: {reason}, and this model's large weights lived in GPU memory only; \
                 loading it again on the CPU failed: {why}"
            ))
        })?;
    let fresh = Rc::new(LiveModel::new(fresh));
    *reloaded.borrow_mut() = Some(format!(
        "{reason}; its weights, which lived in GPU memory only, were loaded again; running on \
         the CPU from now on"
    ));
    if slot.borrow().is_some() {
        *slot.borrow_mut() = Some(fresh.clone());
    }
    fresh.predict(tensors).await.map_err(predict_error)
}

/// `predict: ...`; an activation limit names the JavaScript option.
fn predict_error(e: webinfer::Error) -> JsValue {
    let message = format!("predict: {e}");
    if let webinfer::Error::Core(webinfer::CoreError::ActivationLimit { .. }) = e {
        js::error(format!(
            "{message} (a load option: options.limits.maxActivationElements)"
        ))
    } else {
        js::error(message)
    }
}

#[wasm_bindgen(js_class = LayersModel)]
impl LayersModel {
    /// What the model really runs on: `"webgpu"` or `"cpu"`. It turns to `"cpu"` if the
    /// GPU device is lost (the model then goes on on the CPU).
    #[wasm_bindgen(getter, unchecked_return_type = "BackendName")]
    pub fn backend(&self) -> String {
        if let Some(model) = self.current() {
            self.backend.set(backend_js_name(model.backend_name()));
        }
        self.backend.get().to_string()
    }

    /// Why this backend was chosen, e.g. `auto: cpu, because no hardware GPU adapter is usable (...)`;
    /// after a lost GPU device, followed by `; then the GPU device was lost (...); running on
    /// the CPU from now on`.
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> String {
        let note = self.reloaded.borrow().clone();
        match note.or_else(|| self.current().and_then(|m| m.gpu_fallback())) {
            Some(note) => format!("{}; then {note}", self.backend_reason),
            None => self.backend_reason.clone(),
        }
    }

    /// GPU memory the model's engine uses at its peak, in bytes: the weights plus the largest
    /// execution plan built so far (intermediates, inputs, uniforms). 0 on the CPU (also
    /// after a lost GPU device) and once disposed.
    #[wasm_bindgen(getter, js_name = gpuBytes)]
    pub fn gpu_bytes(&self) -> f64 {
        self.current()
            .and_then(|m| m.gpu_bytes())
            .map_or(0.0, |(_, peak)| peak as f64)
    }

    /// Testing only: destroys the model's GPU device, as a driver reset or a lost GPU would
    /// (the `device.destroy()` of WebGPU). `when`: `"now"` (default), or
    /// `"during-next-predict"`: after the next predict has submitted its GPU work, while its
    /// results are being read back. Predicts then go on on the CPU, that one included.
    /// Returns whether there was a GPU device to destroy (false on the CPU or once disposed);
    /// throws on an unknown `when`.
    #[wasm_bindgen(js_name = debugLoseGpuDevice)]
    pub fn debug_lose_gpu_device(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "\"now\" | \"during-next-predict\"")]
        when: JsValue,
    ) -> Result<bool, JsValue> {
        crate::install_panic_hook();
        let when = when.as_string().unwrap_or_else(|| "now".into());
        let during_next_predict = match when.as_str() {
            "now" => false,
            "during-next-predict" => true,
            other => {
                return Err(js::error(format!(
                    "debugLoseGpuDevice: when must be \"now\" or \"during-next-predict\", got \"{other}\""
                )))
            }
        };
        let Some(model) = self.current() else {
            return Ok(false);
        };
        if model.gpu_bytes().is_none() {
            return Ok(false);
        }
        guard::sync("debugLoseGpuDevice", || {
            if during_next_predict {
                model.debug_lose_gpu_device_during_next_predict();
            } else {
                model.debug_lose_gpu_device();
            }
            true
        })
    }

    /// The model.json URL it was loaded from (absolute).
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The inputs, in the order `predict` takes them.
    #[wasm_bindgen(getter, unchecked_return_type = "TensorInfo[]")]
    pub fn inputs(&self) -> JsValue {
        infos_js(&self.inputs)
    }

    /// The outputs, in the order `predict` returns them.
    #[wasm_bindgen(getter, unchecked_return_type = "TensorInfo[]")]
    pub fn outputs(&self) -> JsValue {
        infos_js(&self.outputs)
    }

    /// Whether `dispose()` has been called.
    #[wasm_bindgen(getter)]
    pub fn disposed(&self) -> bool {
        self.model.borrow().is_none()
    }

    /// Runs the model. Forms:
    /// - `predict(data, shape?)`: one input;
    /// - `predict([a, b], [shapeA, shapeB]?)`: several inputs in `model.inputs` order;
    /// - `predict({data, shape?})` and `predict([{data, shape?}, ...])`;
    /// - `predict({inputName: data | {data, shape?}, ...})`: inputs by name (graph models).
    ///
    /// `data` is a `Float32Array` (other typed arrays and number arrays are converted);
    /// the values are copied when `predict` is called. Without a shape, the model's shape is
    /// used with its one open dimension sized to fit. Resolves to `{name, data, shape}` for a
    /// model with one output, else to an array of them in `model.outputs` order.
    #[wasm_bindgen(unchecked_return_type = "Promise<OutputTensor | OutputTensor[]>")]
    pub fn predict(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "InputData | InputTensor | readonly (InputData | InputTensor)[] | NamedInputs"
        )]
        inputs: JsValue,
        #[wasm_bindgen(
            unchecked_optional_param_type = "readonly number[] | readonly (readonly number[] | null | undefined)[]"
        )]
        shapes: JsValue,
    ) -> Promise {
        crate::install_panic_hook();
        let prepared = guard::sync("predict", || {
            self.prepare(&inputs, &shapes)
                .map_err(|m| js::error(format!("predict: {m}")))
        })
        .and_then(|r| r);
        let names: Vec<String> = self.outputs.iter().map(|o| o.name.clone()).collect();
        let (slot, reload, reloaded) = (
            self.model.clone(),
            self.reload.clone(),
            self.reloaded.clone(),
        );
        guard::promise("predict", async move {
            let (model, tensors) = prepared?;
            let outputs = predict_or_reload(model, &tensors, &slot, &reload, &reloaded).await?;
            Ok(outputs_js(outputs, &names))
        })
    }

    /// Releases the model's weights and engine. Later `predict` calls reject; predictions
    /// already running finish. Calling it again does nothing.
    pub fn dispose(&mut self) {
        crate::install_panic_hook();
        let model = self.model.borrow_mut().take();
        // Dropping the last reference releases the GPU buffers and destroys the device.
        if let Err(e) = guard::sync("dispose", move || drop(model)) {
            web_sys::console::error_1(&e);
        }
    }
}

impl LayersModel {
    /// Reads the inputs from JavaScript (copying their values) into tensors.
    fn prepare(
        &self,
        inputs: &JsValue,
        shapes: &JsValue,
    ) -> Result<(Rc<LiveModel>, Vec<Tensor>), String> {
        let model = self
            .current()
            .ok_or("this model has been disposed (model.dispose() was called)")?;
        let names: Vec<String> = self.inputs.iter().map(|i| i.name.clone()).collect();
        let items = split_inputs(inputs, shapes, &names)?;
        if items.len() != self.inputs.len() {
            return Err(format!(
                "the model has {} input{} ({}), got {}",
                self.inputs.len(),
                if self.inputs.len() == 1 { "" } else { "s" },
                names.join(", "),
                items.len()
            ));
        }
        let mut tensors = Vec::with_capacity(items.len());
        for (index, ((data, shape), info)) in items.into_iter().zip(&self.inputs).enumerate() {
            let slot = InputSlot {
                index,
                name: &info.name,
                model_shape: &info.shape,
            };
            let data = data_f32(&data, &slot)?;
            let dims = match shape {
                Some(shape) => Some(shapes::dims_from_numbers(
                    &slot,
                    &shape_numbers(&shape, &slot)?,
                )?),
                None => None,
            };
            let dims = shapes::resolve(&slot, data.len(), dims.as_deref())?;
            tensors.push(Tensor::new(dims, data).map_err(|e| e.to_string())?);
        }
        Ok((model, tensors))
    }
}

/// One input as given: its data and its shape (if any), both still JavaScript values.
type Item = (JsValue, Option<JsValue>);

/// Splits `predict`'s arguments into one `(data, shape)` per input.
fn split_inputs(inputs: &JsValue, shapes: &JsValue, names: &[String]) -> Result<Vec<Item>, String> {
    let shapes = (!shapes.is_undefined() && !shapes.is_null()).then(|| shapes.clone());
    if is_data(inputs) {
        return Ok(vec![(inputs.clone(), shapes)]);
    }
    if let Some(list) = inputs.dyn_ref::<Array>() {
        let items: Vec<JsValue> = list.iter().collect();
        let shapes: Vec<Option<JsValue>> = match shapes {
            None => vec![None; items.len()],
            Some(s) => match s.dyn_ref::<Array>() {
                // `predict([x], [1, 4])`: one input and its shape.
                Some(a) if items.len() == 1 && (a.length() == 0 || a.get(0).as_f64().is_some()) => {
                    vec![Some(s.clone())]
                }
                Some(a) if a.length() as usize == items.len() => a
                    .iter()
                    .map(|v| (!v.is_undefined() && !v.is_null()).then_some(v))
                    .collect(),
                Some(a) => {
                    return Err(format!(
                        "{} inputs but {} shapes were given",
                        items.len(),
                        a.length()
                    ))
                }
                None => {
                    return Err(format!(
                        "the shapes must be an array (one shape per input), got {}",
                        js::describe(&s)
                    ))
                }
            },
        };
        // A loop rather than a `Result` collect (its own iterator-adapter code in the module).
        let mut out = Vec::with_capacity(items.len());
        for (i, (item, shape)) in items.into_iter().zip(shapes).enumerate() {
            out.push(tensor_item(item, shape, i)?);
        }
        return Ok(out);
    }
    // Named inputs, as tfjs graph models take them: `{inputName: data | {data, shape}}`.
    if inputs.is_object()
        && !inputs.is_function()
        && js::field(inputs, "data", "input")?.is_none()
        && js::field(inputs, "shape", "input")?.is_none()
    {
        let keys: Vec<String> = js_sys::Object::keys(inputs.unchecked_ref::<js_sys::Object>())
            .iter()
            .filter_map(|k| k.as_string())
            .collect();
        if let Some(k) = keys.iter().find(|k| !names.contains(k)) {
            return Err(format!(
                "unknown input \"{k}\" (the model's inputs are {})",
                names.join(", ")
            ));
        }
        return names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let v = js::field(inputs, n, "input")?.ok_or_else(|| {
                    format!(
                        "input \"{n}\" is missing (the model's inputs are {})",
                        names.join(", ")
                    )
                })?;
                tensor_item(v, None, i)
            })
            .collect();
    }
    if inputs.is_object() && !inputs.is_function() {
        return Ok(vec![tensor_item(inputs.clone(), shapes, 0)?]);
    }
    Err(format!(
        "the input must be a Float32Array (or another typed array, or an array of numbers), \
         an object {{data, shape}}, or an array of those; got {}",
        js::describe(inputs)
    ))
}

/// One element of an input list: data, or a `{data, shape}` object.
fn tensor_item(item: JsValue, shape: Option<JsValue>, index: usize) -> Result<Item, String> {
    if is_data(&item) {
        return Ok((item, shape));
    }
    if item.is_object() && !item.is_function() {
        let what = format!("input {index}");
        let data = js::field(&item, "data", &what)?
            .ok_or_else(|| format!("input {index} has no `data` (expected {{data, shape}})"))?;
        let own_shape = js::field(&item, "shape", &what)?;
        if own_shape.is_some() && shape.is_some() {
            return Err(format!(
                "input {index} has a shape both in its object and in the shapes argument"
            ));
        }
        return Ok((data, own_shape.or(shape)));
    }
    Err(format!(
        "input {index} must be a Float32Array (or another typed array, or an array of numbers) \
         or an object {{data, shape}}, got {}",
        js::describe(&item)
    ))
}

/// A typed array, or an array whose first element is a number.
fn is_data(v: &JsValue) -> bool {
    if js_sys::ArrayBuffer::is_view(v) && !v.is_instance_of::<js_sys::DataView>() {
        return true;
    }
    v.dyn_ref::<Array>()
        .is_some_and(|a| a.length() > 0 && a.get(0).as_f64().is_some())
}

/// The values of an input as float32 (copied out of JavaScript).
fn data_f32(v: &JsValue, slot: &InputSlot<'_>) -> Result<Vec<f32>, String> {
    if let Some(a) = v.dyn_ref::<Float32Array>() {
        return Ok(a.to_vec());
    }
    // Any other typed array but the BigInt ones: the JS engine converts it (`new
    // Float32Array(x)` rounds each element to the nearest float32, as `as f32` does), rather
    // than a conversion loop per element type in the module.
    let typed = v.is_instance_of::<Float64Array>()
        || v.is_instance_of::<Int8Array>()
        || v.is_instance_of::<Int16Array>()
        || v.is_instance_of::<Int32Array>()
        || v.is_instance_of::<Uint8Array>()
        || v.is_instance_of::<Uint8ClampedArray>()
        || v.is_instance_of::<Uint16Array>()
        || v.is_instance_of::<Uint32Array>();
    if typed {
        return Ok(Float32Array::new(v).to_vec());
    }
    if let Some(a) = v.dyn_ref::<Array>() {
        let mut out = Vec::with_capacity(a.length() as usize);
        for (i, x) in a.iter().enumerate() {
            let Some(n) = x.as_f64() else {
                return Err(format!(
                    "input {} (\"{}\"): element {i} is {}, not a number",
                    slot.index,
                    slot.name,
                    js::describe(&x)
                ));
            };
            out.push(n as f32);
        }
        return Ok(out);
    }
    Err(format!(
        "input {} (\"{}\"): the data must be a Float32Array (or another typed array except \
         BigInt64Array / BigUint64Array, or an array of numbers), got {}",
        slot.index,
        slot.name,
        js::describe(v)
    ))
}

/// A shape given from JavaScript: an array of numbers.
fn shape_numbers(v: &JsValue, slot: &InputSlot<'_>) -> Result<Vec<f64>, String> {
    let label = || format!("input {} (\"{}\")", slot.index, slot.name);
    let a = v.dyn_ref::<Array>().ok_or_else(|| {
        format!(
            "{}: the shape must be an array of numbers, got {}",
            label(),
            js::describe(v)
        )
    })?;
    a.iter()
        .enumerate()
        .map(|(axis, d)| {
            d.as_f64().ok_or_else(|| {
                format!(
                    "{}: shape[{axis}] is {}, not a number",
                    label(),
                    js::describe(&d)
                )
            })
        })
        .collect()
}

fn infos_js(infos: &[TensorInfo]) -> JsValue {
    infos
        .iter()
        .map(|info| {
            let shape: Array = info
                .shape
                .iter()
                .map(|d| d.map_or(JsValue::NULL, |d| JsValue::from_f64(d as f64)))
                .collect();
            js::object(&[
                ("name", info.name.as_str().into()),
                ("shape", shape.into()),
                ("dtype", info.dtype.as_str().into()),
            ])
        })
        .collect::<Array>()
        .into()
}

/// `{name, data, shape}` for one output, an array of them for several.
fn outputs_js(outputs: Vec<Tensor>, names: &[String]) -> JsValue {
    let mut list: Vec<JsValue> = outputs
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let (shape, data) = t.into_parts();
            let name = names.get(i).map_or("", String::as_str);
            js::object(&[
                ("name", name.into()),
                ("data", Float32Array::from(data.as_slice()).into()),
                ("shape", js::numbers(shape.iter().map(|&d| d as f64))),
            ])
        })
        .collect();
    if list.len() == 1 {
        list.pop().unwrap_or(JsValue::UNDEFINED)
    } else {
        list.into_iter().collect::<Array>().into()
    }
}
