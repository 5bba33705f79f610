import { InputError } from '../errors.js';
import { type DestinationSettings, defaultRegion, parseEndpoint } from '../storage/settings.js';
import { parseBoolean, parseRequired, parseWholeNumber } from './primitives.js';
import type { InputName, InputSource } from './source.js';

/** The primary destination, then the secondary when any of its inputs is set. */
export function parseDestinations(src: InputSource): DestinationSettings[] {
  const primary = parseDestination(src, 'primary');
  const secondary = parseDestination(src, 'secondary');
  const destinations = [primary, secondary].filter((d): d is DestinationSettings => d !== null);
  if (destinations.length === 2 && destinations[0]?.name === destinations[1]?.name)
    throw new InputError(
      'secondary-name',
      `Invalid 'secondary-name': "${destinations[1]?.name}" is also the primary's name. Expected distinct names.`,
    );
  return destinations;
}

function parseDestination(
  src: InputSource,
  role: 'primary' | 'secondary',
): DestinationSettings | null {
  const n = (s: string) => `${role}-${s}` as InputName;
  if (role === 'secondary') {
    const anySet = ['endpoint', 'bucket', 'access-key-id', 'secret-access-key'].some(
      (s) => src.get(n(s)).trim() !== '',
    );
    if (!anySet) return null;
  }
  const endpoint = parseEndpoint(
    n('endpoint'),
    parseRequired(src, n('endpoint'), 'the S3 endpoint URL'),
  );
  const bucket = parseRequired(src, n('bucket'), 'a bucket name');
  if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{1,254}$/.test(bucket))
    throw new InputError(
      n('bucket'),
      `Invalid '${n('bucket')}': "${bucket}". Expected a bucket name (letters, digits, '.', '-', '_').`,
    );
  const name = src.get(n('name')).trim() || role;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name))
    throw new InputError(
      n('name'),
      `Invalid '${n('name')}': "${name}". Expected letters, digits, '.', '-', '_'.`,
    );
  const region = src.get(n('region')).trim() || defaultRegion(endpoint);
  if (!/^[a-z0-9-]{1,64}$/.test(region))
    throw new InputError(
      n('region'),
      `Invalid '${n('region')}': "${region}". Expected a region name such as us-west-004 or auto.`,
    );
  return {
    name,
    role,
    endpoint,
    region,
    bucket,
    accessKeyId: parseRequired(src, n('access-key-id'), 'the access key id'),
    secretAccessKey: parseRequired(src, n('secret-access-key'), 'the secret access key', true),
    forcePathStyle: parseBoolean(src, 'force-path-style'),
    idleTimeoutMs:
      parseWholeNumber(src, 'storage-timeout-seconds', 1, { max: 3600, unit: 'seconds' }) * 1000,
  };
}
