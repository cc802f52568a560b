// Type-checked (never run) by test/types.test.mjs against the package's declarations
// (webinfer.d.ts, the entry point, over the generated webinfer_web.d.ts): the README's usage
// must compile under --strict, and misuse must not.
import init, {
  deleteCachedModel,
  listCachedModels,
  whenCached,
  loadLayersModel,
  memoryStats,
  type CachedModelInfo,
  type LoadLimits,
  type MemoryStats,
  type LayersModel,
  type LoadProgress,
  type LoadWarning,
  type OutputTensor,
  type TensorInfo,
  type WebinferError,
  moduleKind,
  moduleFile,
  type InitOptions,
} from './webinfer';

export async function usage(): Promise<void> {
  await init();
  // Or the CPU-only module; which one is loaded, and its file.
  const options: InitOptions = { backend: 'cpu' };
  await init(options);
  // Or the smallest: CPU-only, layers-models only.
  const layersOnly: InitOptions = { backend: 'cpu', graphModels: false };
  await init(layersOnly);
  const kind: 'full' | 'cpu' | 'cpu-layers' = moduleKind();
  const file: string | null = moduleFile();
  console.log(kind, file); // (a wrong backend is refused at run time: InitInput admits any object)
  const model: LayersModel = await loadLayersModel('https://example.com/model.json', {
    onProgress: (e: LoadProgress) => {
      const percent: number = e * 100; // the event converts to its fraction
      const bytes: number = e.loadedBytes + e.totalBytes;
      const phase: 'model-json' | 'weights' | 'done' = e.phase;
      console.log(percent, bytes, phase, e.fraction.toFixed(2), e.url, e.fromCache);
    },
    onWarning: (w: LoadWarning) => console.warn(w.kind, w.url, w.message),
    backend: 'auto',
    cache: true,
    forceReload: false,
    namespace: 'my-app',
    weightPathPrefix: 'https://cdn.example.com/weights/',
    limits: { maxTotalWeightBytes: 100e6, maxActivationElements: Infinity },
    gpuStreamMinBytes: Infinity,
  });
  // tfjs-style callbacks that take a number still type-check.
  await loadLayersModel(new URL('https://example.com/model.json'), { onProgress: (fraction: number) => console.log(fraction * 100) });

  const backend: 'webgpu' | 'cpu' = model.backend;
  const inputs: TensorInfo[] = model.inputs;
  const openDim: number | null = inputs[0].shape[0];
  const y = (await model.predict(new Float32Array(224 * 224 * 3), [1, 224, 224, 3])) as OutputTensor;
  const data: Float32Array = y.data;
  const several = await model.predict([new Float32Array(4), [0.5, 0.25]], [[1, 4], [1, 2]]);
  const objects = await model.predict([{ data: new Uint8ClampedArray(12), shape: [1, 2, 2, 3] }, { data: new Int32Array(2) }]);
  console.log(backend, openDim, data, several, objects, model.outputs, model.backendReason, model.url, model.disposed);
  const gpuBytes: number = model.gpuBytes;
  const lost: boolean = model.debugLoseGpuDevice('during-next-predict');
  model.debugLoseGpuDevice();
  console.log(gpuBytes, lost);
  model.dispose();

  const mem: MemoryStats = memoryStats();
  const total: number = mem.wasmMemoryBytes + mem.heapBytes + mem.gpuBufferBytes + mem.gpuDevices + mem.liveModels;
  const limits: LoadLimits = { maxShards: 4, maxLayers: 10, maxRank: 4, maxTensorElements: 1e6, maxWeights: 10, maxModelJsonBytes: 1e6 };
  console.log(total, limits);

  await whenCached();
  const cached: CachedModelInfo[] = await listCachedModels({ namespace: 'my-app' });
  const deleted: number = await deleteCachedModel(cached[0].url, { namespace: 'my-app' });
  console.log(deleted, cached[0].bytes, cached[0].complete, cached[0].files[0].kind);

  try {
    await loadLayersModel('x');
  } catch (e) {
    const err = e as WebinferError;
    console.log(err.message, err.url, err.status);
  }

  // @ts-expect-error: not a backend
  await loadLayersModel('x', { backend: 'tpu' });
  // @ts-expect-error: a string is not model input data
  await model.predict('pixels');
  // @ts-expect-error: model.backend is read-only
  model.backend = 'cpu';
  // @ts-expect-error: not a limit
  await loadLayersModel('x', { limits: { maxWeightBytes: 5 } });
  // @ts-expect-error: a limit is a number
  await loadLayersModel('x', { limits: { maxShards: '4' } });
  // @ts-expect-error: not a time to lose the device
  model.debugLoseGpuDevice('later');
}
