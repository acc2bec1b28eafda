#!/usr/bin/env node
// A real IPFS daemon (js-ipfs 0.66.1 from npm) for the storage integration tests: kubo's npm
// packages download their binary at install time, which cannot work offline, while js-ipfs runs
// on node 20 and answers the same RPC API (/api/v0/add, cat, block/get, pin/...).
//
//   node toolchain/ipfs-daemon.mjs --repo DIR --api-port N --gateway-port M [--swarm-port P]
//
// Without --swarm-port it is offline (no libp2p, no bootstrap peers): nothing leaves the machine,
// and a block the repo does not hold fails at once instead of being searched for on the network.
// With --swarm-port it is a libp2p peer listening on 127.0.0.1:P only, still with no bootstrap
// peers and no discovery: it talks to the daemons it is told to connect to (`swarm/connect`), and
// gossips pubsub topics (gossipsub) with them: the channels' transport between machines.
// Prints "RPC API listening on <multiaddr>" when the API answers; SIGTERM or SIGINT stops it cleanly.
import { parseArgs } from 'node:util'

// js-ipfs 0.66 dependencies call Promise.withResolvers, which node 20 lacks (node 22 has it).
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const { values: args } = parseArgs({
  options: {
    repo: { type: 'string' },
    'api-port': { type: 'string' },
    'gateway-port': { type: 'string' },
    'swarm-port': { type: 'string' }
  }
})
if (!args.repo || !args['api-port'] || !args['gateway-port']) {
  console.error('usage: ipfs-daemon.mjs --repo DIR --api-port N --gateway-port M')
  process.exit(2)
}

// Imported after the polyfill is in place.
const { Daemon } = await import('ipfs-daemon')

const apiAddress = `/ip4/127.0.0.1/tcp/${args['api-port']}`
const online = Boolean(args['swarm-port'])
const daemon = new Daemon({
  repo: args.repo,
  offline: !online,
  silent: true,
  init: { algorithm: 'Ed25519' },
  config: {
    Addresses: {
      API: apiAddress,
      Gateway: `/ip4/127.0.0.1/tcp/${args['gateway-port']}`,
      RPC: '',
      Swarm: online ? [`/ip4/127.0.0.1/tcp/${args['swarm-port']}`] : []
    },
    Bootstrap: [],
    Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } },
    Pubsub: { Enabled: true, Router: 'gossipsub' }
  }
})
await daemon.start()
console.log(`RPC API listening on ${apiAddress}`)

let stopping = false
async function stop () {
  if (stopping) return
  stopping = true
  await daemon.stop()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
