import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';
import { waitForPort } from './wait-for-port.ts';
import { waitFor } from './wait-for.ts';

const run = promisify(execFile);

export interface RedisClusterOptions {
  /** Masters, each owning an equal share of the 16384 slots (default 3, the least Redis Cluster allows). */
  masters?: number;
  /** Replicas per master (default 1). */
  replicasPerMaster?: number;
  /**
   * `cluster-node-timeout` in ms (default 1000): how long a node may be unreachable before it is
   * failed and its replica promoted. Production uses seconds; tests want failovers in about 3 s.
   */
  nodeTimeoutMs?: number;
}

interface ClusterNodeProcess {
  port: number;
  busPort: number;
  dir: string;
  child: ChildProcess | undefined;
  /** Stopped with SIGSTOP: running, but answering nothing. */
  paused?: boolean;
}

/** One line of CLUSTER NODES. */
interface NodeLine {
  id: string;
  port: number;
  master: boolean;
  failed: boolean;
  /** The master's id, for a replica. */
  masterId: string | null;
  hasSlots: boolean;
}

/**
 * A private Redis Cluster for one test file: masters and replicas on free loopback ports (never
 * the machine's Redis), each node in its own temporary directory, started with
 * `redis-server --cluster-enabled yes` and joined with `redis-cli --cluster create`. Stopped by
 * PID, also when the test process exits without calling `stop()`.
 */
export class RedisCluster {
  readonly #nodes: ClusterNodeProcess[];
  readonly #root: string;
  readonly #nodeTimeoutMs: number;
  readonly #killOnExit = () => {
    for (const node of this.#nodes) node.child?.kill('SIGKILL');
  };

  private constructor(nodes: ClusterNodeProcess[], root: string, nodeTimeoutMs: number) {
    this.#nodes = nodes;
    this.#root = root;
    this.#nodeTimeoutMs = nodeTimeoutMs;
  }

  /** Starts the nodes, creates the cluster and resolves once every slot is served and every replica is in sync. */
  static async start(options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const masters = options.masters ?? 3;
    const replicas = options.replicasPerMaster ?? 1;
    const root = await mkdtemp(join(tmpdir(), 'tradewire-cluster-'));
    const ports = new Set<number>();
    while (ports.size < masters * (1 + replicas) * 2) ports.add(await freePort());
    const list = [...ports];
    const nodes: ClusterNodeProcess[] = [];
    for (let i = 0; i < masters * (1 + replicas); i++) {
      nodes.push({ port: list[2 * i]!, busPort: list[2 * i + 1]!, dir: root, child: undefined });
    }
    const cluster = new RedisCluster(nodes, root, options.nodeTimeoutMs ?? 1000);
    process.once('exit', cluster.#killOnExit);
    try {
      await Promise.all(nodes.map((node) => cluster.#spawn(node)));
      await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...nodes.map((n) => `127.0.0.1:${n.port}`),
          '--cluster-replicas',
          String(replicas),
          '--cluster-yes',
        ],
        { timeout: 30_000 },
      );
      await cluster.#waitHealthy(nodes, masters, replicas);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** `host:port` of every node, comma-separated: the value of `REDIS_CLUSTER_NODES`. */
  get rootNodes(): string {
    return this.#nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  /** Ports of the nodes whose process runs and answers (not paused). */
  get livePorts(): number[] {
    return this.#nodes.filter((n) => isRunning(n.child) && !n.paused).map((n) => n.port);
  }

  /** PIDs of the running nodes, for tests that check nothing is left behind. */
  get pids(): number[] {
    return this.#nodes.flatMap((n) => (isRunning(n.child) && n.child?.pid ? [n.child.pid] : []));
  }

  /** The port of the master serving `slot` now, as a live node sees the cluster. */
  async masterOfSlot(slot: number): Promise<number> {
    const port = this.livePorts[0];
    if (port === undefined) throw new Error('no live node');
    const slots = await clusterSlots(port);
    const range = slots.find((r) => r.from <= slot && slot <= r.to);
    if (!range) throw new Error(`slot ${slot} is not served`);
    return range.masterPort;
  }

  /** The ports of the current masters (live and serving slots). */
  async masterPorts(): Promise<number[]> {
    const port = this.livePorts[0];
    if (port === undefined) throw new Error('no live node');
    return [...new Set((await clusterSlots(port)).map((r) => r.masterPort))];
  }

  /**
   * Kills the master at `port` with SIGKILL, as a crash would, and resolves once it is dead with
   * its replica's port and `promoted()`, which resolves once that replica has taken over and
   * every live node serves every slot again (with how long the cluster took since the kill).
   */
  async killMaster(
    port: number,
  ): Promise<{ replica: number; promoted(timeoutMs?: number): Promise<{ tookMs: number }> }> {
    return this.#failMaster(port, (node) => this.#kill(node));
  }

  /**
   * Stops the master at `port` with SIGSTOP: its kernel still accepts connections and
   * acknowledges what is sent, but it answers nothing, as a hung Redis or a host gone without a
   * reset. Like `killMaster`, resolves with its replica's port and `promoted()`; `resume()` lets
   * it run again and resolves once it has rejoined as a replica of its successor, in sync.
   */
  async pauseMaster(
    port: number,
  ): Promise<{ replica: number; promoted(timeoutMs?: number): Promise<{ tookMs: number }>; resume(): Promise<void> }> {
    const node = this.#node(port);
    const failed = await this.#failMaster(port, (paused) => {
      paused.paused = true;
      paused.child?.kill('SIGSTOP');
      return Promise.resolve();
    });
    const resume = async () => {
      if (!node.paused) return;
      node.child?.kill('SIGCONT');
      node.paused = false;
      await this.#rejoined(port, 20_000);
    };
    return { ...failed, resume };
  }

  async #failMaster(
    port: number,
    stop: (node: ClusterNodeProcess) => Promise<void>,
  ): Promise<{ replica: number; promoted(timeoutMs?: number): Promise<{ tookMs: number }> }> {
    const node = this.#node(port);
    const self = (await nodeLines(port)).find((n) => n.port === port);
    if (!self?.master) throw new Error(`127.0.0.1:${port} is not a master`);
    // Right after a failover its old master rejoins as this one's replica, but the master's
    // own view may list it a moment later: wait for it rather than fail a test on the timing.
    const replica = await waitFor(
      async () => (await nodeLines(port)).find((n) => n.masterId === self.id && !n.failed),
      { timeoutMs: 10_000, intervalMs: 50, what: `a replica of master 127.0.0.1:${port} to promote` },
    );
    const stoppedAt = Date.now();
    await stop(node);
    const promoted = async (timeoutMs = 20_000) => {
      await waitFor(
        async () => {
          for (const live of this.livePorts) {
            if (!(await clusterStateOk(live))) return false;
            const ranges = await clusterSlots(live);
            if (ranges.some((r) => r.masterPort === port) || coverage(ranges) !== 16384) return false;
          }
          return (await role(replica.port)) === 'master';
        },
        { timeoutMs, intervalMs: 50, what: `the replica 127.0.0.1:${replica.port} to replace 127.0.0.1:${port}` },
      );
      return { tookMs: Date.now() - stoppedAt };
    };
    return { replica: replica.port, promoted };
  }

  /** Kills the node at `port` with SIGKILL and resolves once it is dead. Nothing is promoted for it. */
  async killNode(port: number): Promise<void> {
    await this.#kill(this.#node(port));
  }

  /** `killMaster` and `promoted()` in one: resolves with the new master's port once it serves. */
  async failMaster(port: number, { timeoutMs = 20_000 } = {}): Promise<{ promoted: number; tookMs: number }> {
    const killed = await this.killMaster(port);
    const { tookMs } = await killed.promoted(timeoutMs);
    return { promoted: killed.replica, tookMs };
  }

  /**
   * A planned failover, as an operator does before maintenance: `CLUSTER FAILOVER` on the replica
   * of the master at `port`. Resolves once the replica serves the master's slots and the old
   * master replicates from it.
   */
  async switchOver(port: number, { timeoutMs = 20_000 } = {}): Promise<{ promoted: number }> {
    const lines = await nodeLines(port);
    const self = lines.find((n) => n.port === port);
    const replica = lines.find((n) => self !== undefined && n.masterId === self.id && !n.failed);
    if (!self?.master || !replica) throw new Error(`127.0.0.1:${port} is not a master with a replica`);
    await cli(replica.port, 'CLUSTER', 'FAILOVER');
    await waitFor(
      async () => {
        for (const live of this.livePorts) {
          if (!(await clusterStateOk(live))) return false;
          if ((await clusterSlots(live)).some((r) => r.masterPort === port)) return false;
        }
        return (await role(replica.port)) === 'master' && (await linkUp(port));
      },
      { timeoutMs, intervalMs: 50, what: `127.0.0.1:${replica.port} to take over from 127.0.0.1:${port}` },
    );
    return { promoted: replica.port };
  }

  /**
   * Starts a killed node again with its cluster configuration. A master that was replaced comes
   * back as a replica of its successor (empty: nothing is persisted); resolves once it is in sync.
   */
  async restartNode(port: number, { timeoutMs = 20_000 } = {}): Promise<void> {
    const node = this.#node(port);
    if (isRunning(node.child)) throw new Error(`127.0.0.1:${port} is running`);
    await this.#spawn(node);
    await this.#rejoined(port, timeoutMs);
  }

  /** Resolves once every live node serves and the node at `port` is back: a master with slots, or a replica in sync. */
  async #rejoined(port: number, timeoutMs: number): Promise<void> {
    await waitFor(
      async () => {
        for (const live of this.livePorts) if (!(await clusterStateOk(live))) return false;
        // Another node's view: the restarted one may briefly believe its old configuration.
        const witness = this.livePorts.find((p) => p !== port);
        if (witness === undefined) return true;
        const seen = (await nodeLines(witness)).find((n) => n.port === port);
        if (!seen || seen.failed) return false;
        return seen.master ? seen.hasSlots : (await role(port)) === 'slave' && (await linkUp(port));
      },
      { timeoutMs, intervalMs: 50, what: `127.0.0.1:${port} back in the cluster` },
    );
  }

  /** Kills every node by PID and removes their files. Safe to call twice. */
  async stop(): Promise<void> {
    process.off('exit', this.#killOnExit);
    await Promise.all(this.#nodes.map((node) => this.#kill(node)));
    await rm(this.#root, { recursive: true, force: true });
  }

  #node(port: number): ClusterNodeProcess {
    const node = this.#nodes.find((n) => n.port === port);
    if (!node) throw new Error(`127.0.0.1:${port} is not a node of this cluster`);
    return node;
  }

  async #spawn(node: ClusterNodeProcess): Promise<void> {
    node.child = spawn(
      'redis-server',
      [
        '--port',
        String(node.port),
        '--cluster-port',
        String(node.busPort),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${node.port}.conf`,
        '--cluster-node-timeout',
        String(this.#nodeTimeoutMs),
        // A replica may always take over, however long it was cut off: tests kill masters on purpose.
        '--cluster-replica-validity-factor',
        '0',
        // The first sync starts at once instead of after the default 5 s batching delay.
        '--repl-diskless-sync-delay',
        '0',
        '--dir',
        node.dir,
        '--dbfilename',
        `dump-${node.port}.rdb`,
        '--save',
        '',
        '--appendonly',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    );
    const child = node.child;
    // Exited (its port taken meanwhile): fail now, not after connecting to whoever holds the port.
    await waitForPort(node.port, { timeoutMs: 5000, what: 'redis-server', gone: () => !isRunning(child) });
  }

  async #kill(node: ClusterNodeProcess): Promise<void> {
    const child = node.child;
    node.child = undefined;
    node.paused = false;
    if (!child || !isRunning(child)) return;
    const exited = once(child, 'exit');
    // A paused (SIGSTOPped) node dies at SIGKILL too.
    child.kill('SIGKILL');
    await exited;
  }

  async #waitHealthy(nodes: ClusterNodeProcess[], masters: number, replicas: number): Promise<void> {
    await waitFor(
      async () => {
        for (const node of nodes) {
          if (!(await clusterStateOk(node.port))) return false;
          if (coverage(await clusterSlots(node.port)) !== 16384) return false;
        }
        const lines = await nodeLines(nodes[0]!.port);
        const owning = lines.filter((n) => n.master && n.hasSlots);
        if (owning.length !== masters) return false;
        for (const master of owning) {
          const own = lines.filter((n) => n.masterId === master.id);
          if (own.length !== replicas) return false;
          for (const replica of own) if (!(await linkUp(replica.port))) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: 'the Redis Cluster to serve every slot with replicas in sync' },
    );
  }
}

function isRunning(child: ChildProcess | undefined): child is ChildProcess {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

async function cli(port: number, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('redis-cli', ['-p', String(port), ...args], { timeout: 5000 });
    return stdout;
  } catch {
    return '';
  }
}

async function clusterStateOk(port: number): Promise<boolean> {
  return (await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok');
}

async function role(port: number): Promise<string> {
  return (await cli(port, 'ROLE')).split('\n')[0]?.trim() ?? '';
}

async function linkUp(port: number): Promise<boolean> {
  return (await cli(port, 'INFO', 'replication')).includes('master_link_status:up');
}

async function nodeLines(port: number): Promise<NodeLine[]> {
  const text = await cli(port, 'CLUSTER', 'NODES');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id, address, flags, masterId, , , , , ...slots] = line.trim().split(' ');
      const flagList = (flags ?? '').split(',');
      return {
        id: id ?? '',
        port: Number((address ?? '').split('@')[0]?.split(':')[1]),
        master: flagList.includes('master'),
        failed: flagList.includes('fail') || flagList.includes('fail?'),
        masterId: masterId && masterId !== '-' ? masterId : null,
        hasSlots: slots.length > 0,
      };
    });
}

/** CLUSTER SLOTS as ranges with their master's port (redis-cli prints one value per line). */
async function clusterSlots(port: number): Promise<{ from: number; to: number; masterPort: number }[]> {
  const text = await cli(port, '--json', 'CLUSTER', 'SLOTS');
  if (!text.trim()) return [];
  try {
    const parsed = JSON.parse(text) as [number, number, [string, number, string], ...unknown[]][];
    return parsed.map(([from, to, master]) => ({ from, to, masterPort: Number(master[1]) }));
  } catch {
    return [];
  }
}

function coverage(ranges: { from: number; to: number }[]): number {
  return ranges.reduce((sum, r) => sum + (r.to - r.from + 1), 0);
}
