import { stat } from 'node:fs/promises';
import { AppError } from './errors.js';

/** Whether `file` exists; any other error than "not found" (a permission, say) is an AppError. */
export async function fileExists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw new AppError('invalid_input', `cannot access ${file}: ${error.code ?? 'error'}`);
    },
  );
}
