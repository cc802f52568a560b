// Types of webinfer.js: everything webinfer_web.d.ts declares, and the variant-picking init.
import type { InitInput, InitOutput } from './webinfer_web.js';

export * from './webinfer_web.js';

/** Whether this engine runs WebAssembly relaxed-SIMD (and so the faster module). */
export function relaxedSimdSupported(): boolean;

/** The module `init()` loads here. */
export function moduleVariant(): 'relaxed-simd' | 'simd';

/**
 * Initialises webinfer: without an argument, with the module this browser runs best
 * (`webinfer_web_bg.relaxed.wasm` where relaxed-SIMD validates, else `webinfer_web_bg.wasm`).
 */
export default function init(
  moduleOrPath?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>,
): Promise<InitOutput>;
