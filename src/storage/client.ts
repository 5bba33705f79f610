/** The settings moved to `settings.ts` (the S3 client itself to `s3/client.ts`); kept for `src/inputs/parse.ts`. */
export { type DestinationSettings, defaultRegion, parseEndpoint } from './settings.js';
