// For diagnosis: load into a process with `--import` to take an allocation sample of what
// survived its scavenges (objects minor GCs collected are left out; those major GCs collected
// are kept): what the old generation grows by, and so what sets off the mark-compacts. It
// starts $PROBE_AT_MS after start (default 12,000), runs $PROBE_FOR_MS (default 8,000) and
// writes `$PROBE_DIR/promoted-<pid>.heapprofile` (default /tmp), which Chrome's DevTools open.
// PROBE_INCLUDE_MINOR=1 keeps what the scavenges collected too: everything allocated in the window.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const session = new Session();
session.connect();
const dir = process.env.PROBE_DIR ?? '/tmp';
setTimeout(
  () => {
    session.post('HeapProfiler.enable');
    session.post('HeapProfiler.startSampling', {
      samplingInterval: 8192,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: process.env.PROBE_INCLUDE_MINOR === '1',
    });
    setTimeout(
      () => {
        session.post('HeapProfiler.stopSampling', (err, result) => {
          if (!err) writeFileSync(`${dir}/promoted-${process.pid}.heapprofile`, JSON.stringify(result.profile));
        });
      },
      Number(process.env.PROBE_FOR_MS ?? 8000),
    ).unref();
  },
  Number(process.env.PROBE_AT_MS ?? 12000),
).unref();
