/** Which engine runs a model: `"auto"` (WebGPU when a usable adapter exists, else the CPU), `"webgpu"` or `"cpu"`. */
export type BackendChoice = "auto" | "webgpu" | "cpu";

/** What a loaded model really runs on. */
export type BackendName = "webgpu" | "cpu";

/** The fields of a progress event of `loadLayersModel`. */
export interface LoadProgressFields {
  readonly loadedBytes: number;
  readonly totalBytes: number;
  /** `loadedBytes / totalBytes`, in [0, 1]. */
  readonly fraction: number;
  /** The file the latest bytes belong to (the model URL for `model-json` and `done`). */
  readonly url: string;
  /** Whether the latest bytes came from the cache; for `done`, whether the whole model did. */
  readonly fromCache: boolean;
  readonly phase: "model-json" | "weights" | "done";
}

/**
 * A progress event of `loadLayersModel`.
 *
 * `totalBytes` is exact from the first event on (model.json's length plus every weight's
 * stored bytes) and never changes; `loadedBytes` never decreases; the last event has
 * `phase === "done"` and `loadedBytes === totalBytes`.
 *
 * At run time the event is an object with these fields that also converts to the number
 * `fraction` (what tfjs passes to `onProgress`): `e * 100`, `+e`, `e >= 1`, `` `${e}` `` and
 * `e.toFixed(1)` all work. It is typed as `number & LoadProgressFields` so that both
 * `(e) => e.fraction` and tfjs-style `(fraction: number) => fraction * 100` callbacks
 * type-check. Only `typeof e` (`"object"`) and `e === 1` differ from a real number.
 */
export type LoadProgress = number & LoadProgressFields;

/** Something a load recovered from (it goes on). Without `onWarning` it goes to `console.warn`. */
export interface LoadWarning {
  readonly kind: "not-cached" | "cache-entry-evicted" | "cache-unavailable";
  readonly url: string;
  readonly message: string;
}

/** The options of `loadLayersModel`. Keys it does not know are ignored (tfjs options pass through). */
export interface LoadOptions {
  /** Called with each progress event (rate-limited: at most ~100 plus one per 50 ms). */
  onProgress?: (event: LoadProgress) => void;
  onWarning?: (warning: LoadWarning) => void;
  /** Default `"auto"`. */
  backend?: BackendChoice;
  /** Read and write the Cache API. Default `true`. */
  cache?: boolean;
  /** Ignore what is cached, download everything and cache it again. Default `false`. */
  forceReload?: boolean;
  /** A separate cache (`webinfer-v1:<namespace>`): an app name, or a version to bump when the files behind a URL change. */
  namespace?: string;
  /** Where the weight shards are, instead of next to model.json (tfjs's `weightPathPrefix`). */
  weightPathPrefix?: string;
  /** Bounds on what the model may declare, checked before anything is allocated (and, for model.json, before any shard is downloaded). */
  limits?: LoadLimits;
  /**
   * On WebGPU: Dense and Conv2D kernels of at least this many bytes (as float32; not one a
   * BatchNormalization follows, which is folded into it on the host) are written straight
   * into GPU memory as their bytes download, so WebAssembly memory never holds them (it
   * never shrinks once grown); uint8-quantized and float16 kernels stay in that form there
   * (a quarter or half of float32's memory). If the GPU device is later lost, the first `predict` after
   * it loads the model again on the CPU (from the cache when `cache` is on) and goes on.
   * Default 65536 (64 KiB: a smaller kernel would take no less than the 64 KiB the
   * streaming decoder holds for it); `Infinity` streams nothing.
   */
  gpuStreamMinBytes?: number;
}

/**
 * Bounds on what a model may declare (`webinfer_tfjs::Limits`). Each is a non-negative
 * integer, or `Infinity` for no bound; an omitted one keeps its default. A model over a
 * limit fails to load with a message that names the option to raise, e.g. `... exceeds the
 * limit of 1000 (a load option: raise options.limits.maxTotalWeightBytes, now 1000)`.
 * The defaults admit every real tfjs model known while keeping a hostile file from asking
 * for more than a few GiB. An unknown key is an error (a typo would otherwise be ignored).
 */
export interface LoadLimits {
  /** Sum of the stored bytes of every weight in the manifest. Default 4 GiB. */
  maxTotalWeightBytes?: number;
  /** Elements of any one weight. Default 2^31. */
  maxTensorElements?: number;
  /** Elements of any one activation (input, intermediate value, output), checked at load for the declared shapes (open dimensions as 1) and at every predict for the inputs given. Default 2^28. */
  maxActivationElements?: number;
  /** Rank of any weight or input shape. Default 8. */
  maxRank?: number;
  /** Shard files over all weight groups. Default 10 000. */
  maxShards?: number;
  /** Weights over all weight groups. Default 100 000. */
  maxWeights?: number;
  /** Layers of a layers-model (nodes of a graph-model). Default 100 000. */
  maxLayers?: number;
  /** Size of model.json itself. Default 64 MiB. */
  maxModelJsonBytes?: number;
}

/**
 * What the module holds now (`memoryStats()`), for leak checks and memory reports.
 * Byte counts are exact; `wasmMemoryBytes` never shrinks (WebAssembly memory only grows),
 * `heapBytes` is what is allocated now, `heapPeakBytes` the most it has been.
 */
export interface MemoryStats {
  /** Size of the WebAssembly memory (`memory.buffer.byteLength`). */
  readonly wasmMemoryBytes: number;
  /** Bytes allocated on the Rust heap and not freed. */
  readonly heapBytes: number;
  /** The largest `heapBytes` has been since the module started (a realloc counts both blocks). `wasmMemoryBytes` above it is the allocator's fragmentation and the module's static data and stack (about 1.1 MiB). */
  readonly heapPeakBytes: number;
  /** Bytes of every GPU buffer webinfer holds (weights, intermediates, inputs, uniforms, readback staging), over all models. A disposed model's are destroyed at once. */
  readonly gpuBufferBytes: number;
  /** GPU devices webinfer holds (one per model on WebGPU); a disposed model's is destroyed. */
  readonly gpuDevices: number;
  /** Models loaded and not yet released (disposed, with no predict still running). */
  readonly liveModels: number;
}

/** A model input or output. */
export interface TensorInfo {
  readonly name: string;
  /** `null` where the model leaves the size open (the batch, usually). */
  readonly shape: (number | null)[];
  readonly dtype: string;
}

/** Values of an input: converted to float32. */
export type InputData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint8ClampedArray
  | Uint16Array
  | Uint32Array
  | readonly number[];

/** An input with its shape. Without `shape`, the model's shape is used, its one open dimension sized to fit. */
export interface InputTensor {
  data: InputData;
  shape?: readonly number[];
}

/** Inputs by name (`model.inputs[i].name`), as tfjs graph models take them. */
export type NamedInputs = { readonly [name: string]: InputData | InputTensor };

/** One output of `predict`: a fresh `Float32Array` (not a view of WebAssembly memory). */
export interface OutputTensor {
  name: string;
  data: Float32Array;
  shape: number[];
}

export interface CachedFileInfo {
  url: string;
  kind: "model-json" | "shard";
  bytes: number;
}

/** A model with files in the cache. */
export interface CachedModelInfo {
  /** The model.json URL (absolute). */
  url: string;
  /** Storage used: the sum of `files[].bytes`. */
  bytes: number;
  files: CachedFileInfo[];
  /** Every file is cached: the next load makes no network request. */
  complete: boolean;
}

export interface CacheOptions {
  /** The namespace given to `loadLayersModel` (default: none). */
  namespace?: string;
}

/**
 * Every rejection of this module is an `Error` whose message says what failed and where
 * (URL and HTTP status, layer, expected and actual shapes). Load failures also carry the
 * URL at fault (`url`) and, for HTTP errors, the status (`status`).
 */
export interface WebinferError extends Error {
  url?: string;
  status?: number;
}
