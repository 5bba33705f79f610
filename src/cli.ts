#!/usr/bin/env node
import { runCli } from './main.js';
import { exitWhenFlushed } from './report/exit.js';

// Exit with the result once stdout and stderr are flushed: stray sockets must not keep a
// finished command alive, and a piped report must arrive whole.
exitWhenFlushed(await runCli(process.argv.slice(2)));
