// Loaded into every server the bench starts (`import './guard.js'`, or `node --import` for Tollgate):
// when the bench runner that spawned this process disappears — even by SIGKILL, which leaves it no
// chance to clean up — the process terminates itself, so no server is ever left orphaned.
// Cost: one unref'd timer per second.

const parent = process.ppid;
const timer = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(timer);
  // SIGTERM first so Tollgate shuts down through its own handler; exit hard if it does not.
  process.kill(process.pid, 'SIGTERM');
  setTimeout(() => process.exit(1), 5_000).unref();
}, 1_000);
timer.unref();

export {};
