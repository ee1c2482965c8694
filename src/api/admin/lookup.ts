// Finding an operation by id in a group (the CLI names the operation it calls).
import { AppError } from '../../lib/errors.js';
import type { Operation } from '../operation.js';

export function opById(ops: readonly Operation[]): (id: string) => Operation {
  const byId = new Map(ops.map((o) => [o.id, o]));
  return (id) => {
    const found = byId.get(id);
    if (!found) throw new AppError('internal', `no operation ${id}`);
    return found;
  };
}
