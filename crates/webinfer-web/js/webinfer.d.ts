// Types of webinfer.js: everything webinfer_web.d.ts declares (the CPU-only module has the
// same API), and the module-picking init.
import type { InitInput, InitOutput } from './webinfer_web.js';

export * from './webinfer_web.js';

/** Whether this engine runs WebAssembly relaxed-SIMD (and so the faster module). */
export function relaxedSimdSupported(): boolean;

/** The SIMD variant `init()` loads here. */
export function moduleVariant(): 'relaxed-simd' | 'simd';

/**
 * Which module is loaded: 'full' (WebGPU and CPU), 'cpu' (CPU-only, no WebGPU code) or
 * 'cpu-layers' (CPU-only, layers-models only); before `init()`, the one it would load by
 * default ('full' where the page has `navigator.gpu`).
 */
export function moduleKind(): 'full' | 'cpu' | 'cpu-layers';

/** The file of the module `init()` loaded (e.g. `webinfer_web_bg.relaxed.wasm`); null before. */
export function moduleFile(): string | null;

/** Which module `init()` loads. */
export interface InitOptions {
  /**
   * `'cpu'`: the CPU-only module (smaller; `backend: 'webgpu'` then rejects). `'webgpu'` /
   * `'auto'` (the default): the full one where the page has WebGPU.
   */
  backend?: 'auto' | 'webgpu' | 'cpu';
  /**
   * `false`: where the CPU-only module is chosen, the one without graph-model code (~23 KB of
   * gzip smaller): `loadLayersModel` works as always, and loading a graph-model rejects with
   * an Error that says so. Default `true`. The full module always loads both formats.
   */
  graphModels?: boolean;
}

/**
 * Initialises webinfer: without an argument, the full module where the page has WebGPU and the
 * CPU-only one where it has not, in the SIMD variant this browser runs best
 * (`webinfer_*_bg.relaxed.wasm` where relaxed-SIMD validates, else `webinfer_*_bg.wasm`).
 */
export default function init(
  options?:
    | InitOptions
    | { module_or_path: InitInput | Promise<InitInput> }
    | InitInput
    | Promise<InitInput>,
): Promise<InitOutput>;
