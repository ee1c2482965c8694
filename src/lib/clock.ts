// Time as a parameter: services take a Clock so tests and pure code never read the wall clock directly.
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();
