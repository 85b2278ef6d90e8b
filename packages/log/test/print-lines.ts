// Logs two lines the way the launcher would, pretty when the first argument says so. Run as a
// child process by log.test.ts, which reads its stdout through a pipe.
import { createLogger } from '../src/index.ts';

const logger = createLogger({ name: 'tradewire', pretty: process.argv[2] === 'pretty' });
logger.info({ userId: 7, token: 'secret-token' }, 'user signed in');
logger.warn('broker down');
