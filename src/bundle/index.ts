export { createBundleStream, extractBundle } from './archive.js';
export { collectConfigFiles, isEnvFile } from './collect.js';
export {
  CONFIG_PATHS_INPUT,
  checkConfigPattern,
  DEFAULT_CONFIG_PATHS,
  parseConfigPaths,
} from './paths.js';
