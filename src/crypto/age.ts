// age encryption (https://age-encryption.org/v1), in src/crypto/age/: keys.ts (recipients,
// identities, settings), header.ts (header written and read; the passphrase note),
// payload.ts (the payload sealed and opened natively), stream.ts (the two joined as
// streams). This file is what the rest of pg-dr imports.
export {
  type DecryptionSettings,
  type EncryptionSettings,
  parseIdentities,
  parseRecipients,
  recipientsOf,
} from './age/keys.js';
export { decryptStream, encryptStream } from './age/stream.js';
