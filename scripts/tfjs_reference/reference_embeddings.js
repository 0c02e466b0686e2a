// Reference embeddings from the ORIGINAL TF.js graph model, run by TensorFlow.js itself (pure-JS CPU
// backend: no native binary, no network), to check lookalike's PyTorch port against.
//
//   cd scripts/tfjs_reference && npm install        # @tensorflow/tfjs only (node_modules is git-ignored)
//   node reference_embeddings.js MODEL_JSON CROPS_U8 N SCALE OFFSET OUT_F32
//
// CROPS_U8: N x 112 x 112 x 3 uint8 RGB (aligned crops, raw bytes); the model input is
// crop * SCALE + OFFSET (float32, NHWC). OUT_F32: the model's output, N x D float32 little-endian.
// Normally driven by scripts/make_human_reference.py.
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

async function main() {
  const [modelJson, cropsFile, nArg, scaleArg, offsetArg, outFile] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const doc = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const weightSpecs = [];
  const buffers = [];
  for (const group of doc.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(path.dirname(modelJson), p)));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = {
    load: async () => ({ modelTopology: doc.modelTopology, weightSpecs, weightData, format: doc.format,
      generatedBy: doc.generatedBy, convertedBy: doc.convertedBy, signature: doc.signature,
      userDefinedMetadata: doc.userDefinedMetadata }),
  };
  const model = await tf.loadGraphModel(handler);
  const n = parseInt(nArg, 10);
  const scale = parseFloat(scaleArg);
  const offset = parseFloat(offsetArg);
  const bytes = fs.readFileSync(cropsFile);
  if (bytes.length !== n * 112 * 112 * 3) throw new Error(`expected ${n * 112 * 112 * 3} bytes, got ${bytes.length}`);
  const rows = [];
  for (let i = 0; i < n; i += 1) { // one crop at a time, as Human runs it
    const u8 = new Uint8Array(bytes.buffer, bytes.byteOffset + i * 112 * 112 * 3, 112 * 112 * 3);
    const out = tf.tidy(() => {
      const x = tf.tensor4d(Float32Array.from(u8), [1, 112, 112, 3], 'float32').mul(scale).add(offset);
      return model.execute(x);
    });
    rows.push(Float32Array.from(await out.data()));
    out.dispose();
  }
  const d = rows[0].length;
  const flat = new Float32Array(n * d);
  rows.forEach((r, i) => flat.set(r, i * d));
  fs.writeFileSync(outFile, Buffer.from(flat.buffer));
  console.log(`tfjs ${tf.version.tfjs} backend ${tf.getBackend()}: ${n} x ${d} -> ${outFile}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
