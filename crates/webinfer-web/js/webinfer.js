// webinfer's entry point: the whole API, and an `init()` that loads the one WebAssembly module
// of the package's four this page needs:
//   webinfer_web_bg*.wasm (+ webinfer_web.js)   WebGPU and the WASM CPU engine;
//   webinfer_cpu_bg*.wasm (+ webinfer_cpu.js)   the WASM CPU engine only: no WebGPU code, a
//                                               quarter smaller; for pages without WebGPU;
//   webinfer_cpu_layers_bg*.wasm (+ webinfer_cpu_layers.js)
//                                               the same for layers-models only (no
//                                               graph-model code): the smallest download;
// each built twice from the same sources: `.relaxed.wasm` with relaxed-SIMD fused
// multiply-add (Chrome 114+, Edge 114+, Firefox 145+ ...), used when WebAssembly.validate
// accepts relaxed-SIMD, and plain 128-bit SIMD everywhere else.
//
// The API below is bound to the module `init()` loaded (live bindings), so call `init()` first.
export let LayersModel, __debugPanic, deleteCachedModel, initSync, listCachedModels,
  loadGraphModel, loadLayersModel, memoryStats, whenCached;

/** Binds the API to `src`: the module init() loaded, or (until then) `notReady`. */
function bind(src) {
  ({
    LayersModel, __debugPanic, deleteCachedModel, initSync, listCachedModels,
    loadGraphModel, loadLayersModel, memoryStats, whenCached,
  } = src);
}

// Until init() has loaded a module, every name is a function that says so instead of failing
// obscurely.
const notReady = new Proxy({}, {
  get: (_, name) => () => {
    throw new Error(`webinfer: ${String(name)}() was called before init() finished: call \`await init()\` first`);
  },
});
bind(notReady);

// A minimal module whose one function uses f32x4.relaxed_madd (opcode 0xfd 0x105):
// (module (func (result v128) v128.const 0 v128.const 0 v128.const 0 f32x4.relaxed_madd)).
const V128_ZERO = [0xfd, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const BODY = [0x00, ...V128_ZERO, ...V128_ZERO, ...V128_ZERO, 0xfd, 0x85, 0x02, 0x0b];
const RELAXED_SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
  0x03, 0x02, 0x01, 0x00, // one function of type 0
  0x0a, BODY.length + 2, 0x01, BODY.length, ...BODY, // its code
]);

/** Whether this engine runs WebAssembly relaxed-SIMD (and so the faster module). */
export function relaxedSimdSupported() {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(RELAXED_SIMD_PROBE);
  } catch {
    return false;
  }
}

/** The module `init()` loads here: 'relaxed-simd' or 'simd'. */
export function moduleVariant() {
  return relaxedSimdSupported() ? 'relaxed-simd' : 'simd';
}

/** Whether this page can use WebGPU at all (`navigator.gpu`). */
function webgpuInBrowser() {
  return typeof navigator === 'object' && navigator !== null && !!navigator.gpu;
}

let loaded = null; // { kind: 'full' | 'cpu' | 'cpu-layers', file, output }

/**
 * Which module is loaded: 'full' (WebGPU and CPU), 'cpu' (CPU-only) or 'cpu-layers' (CPU-only,
 * layers-models only); before `init()`, the one it would load by default.
 */
export function moduleKind() {
  return loaded ? loaded.kind : webgpuInBrowser() ? 'full' : 'cpu';
}

/** The file of the module `init()` loaded, e.g. 'webinfer_web_bg.relaxed.wasm'; null before. */
export function moduleFile() {
  return loaded ? loaded.file : null;
}

/**
 * Initialises webinfer (once; later calls return the first one's result).
 *   init()                    the full module where the page has WebGPU (navigator.gpu), the
 *                             CPU-only one where it has not;
 *   init({backend: 'cpu'})    the CPU-only module (a page that never uses WebGPU downloads
 *                             less); {backend: 'webgpu'} or 'auto': the full one;
 *   init({graphModels: false})
 *                             with the CPU-only module (backend 'cpu', or 'auto' without
 *                             WebGPU): the one that loads layers-models only, ~23 KB of gzip
 *                             smaller; a graph-model's load then rejects, saying so. The full
 *                             module always loads both formats;
 *   init(moduleOrPath)        that module (a URL, a Response, bytes or a compiled module, as
 *                             wasm-bindgen's init takes them): the glue of the module its URL
 *                             names (webinfer_cpu_layers, webinfer_cpu), the full one's otherwise.
 */
export default async function init(arg) {
  if (loaded) return loaded.output;
  const options = isOptions(arg) ? arg : undefined;
  let kind;
  let input;
  if (options) {
    const backend = options.backend ?? 'auto';
    if (!['auto', 'webgpu', 'gpu', 'cpu'].includes(backend)) {
      throw new Error(`init: options.backend must be "auto", "webgpu" or "cpu", got ${JSON.stringify(backend)}`);
    }
    const graphModels = options.graphModels ?? true;
    if (typeof graphModels !== 'boolean') {
      throw new Error(`init: options.graphModels must be true or false, got ${JSON.stringify(graphModels)}`);
    }
    kind = backend === 'cpu' || (backend === 'auto' && !webgpuInBrowser()) ? 'cpu' : 'full';
    if (kind === 'cpu' && !graphModels) kind = 'cpu-layers';
  } else if (arg !== undefined) {
    input = arg;
    const url = String(arg?.module_or_path ?? arg?.url ?? arg);
    kind = /webinfer_cpu_layers/.test(url) ? 'cpu-layers' : /webinfer_cpu/.test(url) ? 'cpu' : 'full';
  } else {
    kind = webgpuInBrowser() ? 'full' : 'cpu';
  }
  const stem = { full: 'webinfer_web_bg', cpu: 'webinfer_cpu_bg', 'cpu-layers': 'webinfer_cpu_layers_bg' }[kind];
  const file = `${stem}${relaxedSimdSupported() ? '.relaxed' : ''}.wasm`;
  // Literal import()s, one per module, so that bundlers see each glue file.
  const glue = kind === 'cpu-layers' ? await import('./webinfer_cpu_layers.js')
    : kind === 'cpu' ? await import('./webinfer_cpu.js') : await import('./webinfer_web.js');
  const output = await glue.default(input ?? { module_or_path: new URL(file, import.meta.url) });
  bind(glue);
  loaded = { kind, file: input === undefined ? file : String(input?.module_or_path ?? input), output };
  return output;
}

/** `{backend, graphModels}` (init's options), as opposed to what wasm-bindgen's init takes. */
function isOptions(arg) {
  if (arg === null || typeof arg !== 'object') return false;
  if ('module_or_path' in arg) return false;
  if (typeof URL !== 'undefined' && arg instanceof URL) return false;
  if (typeof Request !== 'undefined' && arg instanceof Request) return false;
  if (typeof Response !== 'undefined' && arg instanceof Response) return false;
  if (arg instanceof WebAssembly.Module || arg instanceof ArrayBuffer || ArrayBuffer.isView(arg)) return false;
  if (typeof arg.then === 'function') return false;
  return true;
}
