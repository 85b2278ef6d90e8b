export { freePort } from './free-port.ts';
export { createTestDatabase } from './postgres.ts';
export { NginxServer, type NginxOptions } from './nginx.ts';
export { createTestCertificate, type TestCertificate } from './tls-certificate.ts';
export { RedisCluster, type RedisClusterOptions } from './redis-cluster.ts';
export { RedisServer } from './redis-server.ts';
export { TcpProxy } from './tcp-proxy.ts';
export { TestClient } from './test-client.ts';
export { TradewireProcess } from './tradewire-process.ts';
export { nextValue, waitFor } from './wait-for.ts';
export {
  REPO_ROOT,
  importedPackages,
  readWorkspace,
  runtimeReachable,
  sourceFiles,
  type PackageManifest,
  type WorkspacePackage,
} from './workspace.ts';
