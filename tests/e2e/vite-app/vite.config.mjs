// Vite behind Warren's port proxy: listen on loopback inside the sandbox (the proxy connects
// from inside, through the agent); accept the public `<port>-<id>.localhost:<api port>` Host;
// the HMR client connects to the page's own origin, whose port is Warren's API port.
export default {
  clearScreen: false,
  server: {
    host: "127.0.0.1",
    port: Number(process.env.VITE_PORT || 5173),
    strictPort: true,
    allowedHosts: [".localhost"],
    hmr: { clientPort: Number(process.env.HMR_CLIENT_PORT) },
  },
};
