import { destinationContract } from '../harness/destination-contract.js';
import { MemoryStore, memoryDestination } from '../harness/memory-destination.js';

destinationContract('memory', async () => {
  const store = new MemoryStore(['dr'], 'memory-secret-key');
  const on = (bucket: string, secretAccessKey: string, role: 'primary' | 'secondary') =>
    memoryDestination('mem', { store, settings: { bucket, secretAccessKey, role } }).destination;
  const secret = 'wrong-memory-secret-0f3a9c';
  return {
    destination: on('dr', 'memory-secret-key', 'primary'),
    missingBucket: on('no-such-bucket', 'memory-secret-key', 'secondary'),
    refusedCredentials: { destination: on('dr', secret, 'primary'), secret },
    manyKeys: true,
  };
});
