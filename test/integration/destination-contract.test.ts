import { createDestination, type DestinationSettings } from '../../src/storage/destination.js';
import { destinationContract } from '../harness/destination-contract.js';
import { startS3 } from '../harness/s3.js';

destinationContract('S3 (s3rver)', async () => {
  const server = await startS3({ buckets: ['contract'], name: 'contract' });
  const settings = (over: Partial<DestinationSettings>): DestinationSettings => ({
    name: 's3rver',
    role: 'primary',
    endpoint: server.endpoint,
    region: server.region,
    bucket: 'contract',
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    forcePathStyle: true,
    ...over,
  });
  const secret = 'wrong-s3rver-secret-0f3a9c';
  return {
    destination: createDestination(settings({})),
    missingBucket: createDestination(settings({ bucket: 'no-such-bucket', role: 'secondary' })),
    // s3rver does not check V4 signatures: an unknown access key id is what it refuses.
    refusedCredentials: {
      destination: createDestination(
        settings({ accessKeyId: 'NOT-S3RVER', secretAccessKey: secret }),
      ),
      secret,
    },
    // s3rver's continuation token is DES-encrypted, which Node 20's OpenSSL 3 refuses
    // without --openssl-legacy-provider (not set for the test workers): one page only.
    manyKeys: false,
    stop: () => server.stop(),
  };
});
