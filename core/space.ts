/**
 * Search spaces: the domains a hyperparameter can take, their validation, sampling, and the
 * typed config a trainable receives.
 *
 * Conventions follow Ray Tune so that spaces port one to one:
 * - `loguniform(min, max)` takes its bounds in real space (not log space as hyperopt does);
 * - `randint(min, max)` and `lograndint(min, max)` exclude `max`; `qrandint` and `qlograndint`
 *   include it;
 * - quantized floats sample in `[min, max]` and round to a multiple of `q`;
 * - `grid(values)` is Ray's `grid_search`: every one of `numSamples` samples runs the whole grid;
 * - a `choice` whose options are objects holding domains is a conditional sub-space: the chosen
 *   branch's parameters are sampled, the others do not exist in the config.
 *
 * @module
 */

// The space is split into one module per concern (core/space/); this module is the one they
// are imported from.

export {
  choice,
  type ChoiceDomain,
  type ConfigOf,
  DOMAIN,
  type Domain,
  type DomainBase,
  type FloatDomain,
  grid,
  type GridDomain,
  type IntDomain,
  isDomain,
  lograndint,
  loguniform,
  type NormalDomain,
  qlograndint,
  qloguniform,
  qrandint,
  quniform,
  randint,
  randn,
  sampleFrom,
  type SampleFromDomain,
  type Space,
  uniform,
  type ValueOf,
} from "./space/domains.ts";
export {
  hasDomains,
  isPlainObject,
  parameters,
  type ParamInfo,
  type ParamPath,
  validateSpace,
} from "./space/walk.ts";
export { type Assignment, quantize, sampleConfig, sampleValue } from "./space/sample.ts";
export { type GridDimension, gridDimensions, gridPoint, gridSize } from "./space/grid.ts";
export { DOMAIN_TYPES, spaceFromJson, SpaceSpecError, spaceToJson } from "./space/json.ts";
/** Re-exported from `options.ts`, where the did-you-mean of every option check lives. */
export { suggest } from "./options.ts";
