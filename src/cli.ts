#!/usr/bin/env node
import { runCli } from './main.js';

// Exit at once with the result: stray sockets must not keep a finished command alive.
process.exit(await runCli(process.argv.slice(2)));
