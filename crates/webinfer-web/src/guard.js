// Runs f() and returns undefined, or what it threw: a trap of the WebAssembly module (a Rust
// panic: `RuntimeError: unreachable`) or a JavaScript exception that crossed Rust frames.
// The trap unwinds only the frames inside f, so the Rust code that called this goes on and
// turns the failure into a rejected promise (see src/guard.rs).
export function callGuarded(f) {
  try {
    f();
    return undefined;
  } catch (e) {
    return e === undefined ? null : e;
  }
}

// A promise resolved by the next macrotask (window or worker).
export function macrotask() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
