// webinfer's entry point: the whole API of webinfer_web.js, and an `init()` that loads the
// fastest of the package's two WebAssembly modules this browser can run:
//   webinfer_web_bg.relaxed.wasm  SIMD with relaxed-SIMD fused multiply-add (Chrome 114+,
//                                 Edge 114+, Firefox 145+ ...), used when WebAssembly.validate
//                                 accepts relaxed-SIMD;
//   webinfer_web_bg.wasm          plain 128-bit SIMD, everywhere else.
// Both are built from the same sources and share webinfer_web.js; the page downloads one.
import initModule from './webinfer_web.js';

export * from './webinfer_web.js';

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

/**
 * Initialises webinfer. Without an argument it loads the module this browser runs best;
 * given one (a URL, a Response, bytes or a compiled module, as webinfer_web.js's init takes),
 * it loads that.
 */
export default function init(moduleOrPath) {
  if (moduleOrPath !== undefined) return initModule(moduleOrPath);
  const file = relaxedSimdSupported() ? 'webinfer_web_bg.relaxed.wasm' : 'webinfer_web_bg.wasm';
  return initModule({ module_or_path: new URL(file, import.meta.url) });
}
