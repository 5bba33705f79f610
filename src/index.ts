import { run } from './main.js';

await run();
// Exit now: a stray keep-alive socket to a slow destination must not hold a finished
// (or cancelled) step open. stdout and stderr are synchronous on Linux pipes and files.
process.exit(process.exitCode ?? 0);
