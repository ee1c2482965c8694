#!/usr/bin/env node
// Entry point of the `tollgate` CLI: runs the compiled program from dist/.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
