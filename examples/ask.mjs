#!/usr/bin/env node
// Ask a wizd agent one question from Node.js, with the `net` module only.
//
//     node examples/ask.mjs AGENT "question"
//
// Creates AGENT (on the default provider) if there is none, opens your DM with
// it (or reuses the open one), subscribes to that DM, sends the question, and
// prints the reply when it is stored. Exits 1 if the reply is an error message.
// The socket is $WIZ_SOCKET, else $XDG_RUNTIME_DIR/wiz/wizd.sock, else
// /tmp/wiz-$UID/wizd.sock. The protocol: docs/protocol.md.

import net from "node:net";

function socketPath() {
  const env = process.env;
  if (env.WIZ_SOCKET) return env.WIZ_SOCKET;
  if (env.XDG_RUNTIME_DIR) return `${env.XDG_RUNTIME_DIR}/wiz/wizd.sock`;
  return `/tmp/wiz-${process.getuid()}/wizd.sock`;
}

class RpcError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code; // -32001 not found, -32002 conflict, ...
  }
}

// One connection: newline-delimited JSON-RPC 2.0. Responses settle the promise
// of their call; notifications go to `onNotification`.
class Wizd {
  constructor(path) {
    this.sock = net.createConnection(path);
    this.sock.setEncoding("utf8");
    this.nextId = 1;
    this.waiting = new Map();
    this.onNotification = () => {};
    this.ready = new Promise((resolve, reject) => {
      this.sock.once("connect", resolve);
      this.sock.once("error", reject);
    });
    let buffer = "";
    this.sock.on("data", (chunk) => {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        if (line.trim()) this.receive(JSON.parse(line));
      }
    });
    this.sock.on("close", () => {
      for (const { reject } of this.waiting.values()) {
        reject(new Error("wizd closed the connection"));
      }
    });
  }

  receive(msg) {
    if (!("id" in msg)) return this.onNotification(msg);
    const call = this.waiting.get(msg.id);
    this.waiting.delete(msg.id);
    if (msg.error) call.reject(new RpcError(msg.error));
    else call.resolve(msg.result);
  }

  call(method, params = {}) {
    const id = this.nextId++;
    const line = JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n";
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.sock.write(line);
    });
  }

  close() {
    this.sock.end();
  }
}

// The reply message to `question` from the agent named `agentName`.
async function ask(wiz, agentName, question) {
  let agent;
  try {
    agent = await wiz.call("agent.get", { name: agentName });
  } catch (err) {
    if (err.code !== -32001) throw err; // anything but "not found"
    agent = await wiz.call("agent.create", {
      name: agentName, role: "helper",
      backstory: "Made by examples/ask.mjs.", goal: "Answer briefly.",
    });
  }
  const dm = await wiz.call("dm.create", { participants: [agent.id], reuse: true });
  // Listen and subscribe before sending, so that the reply cannot come in between.
  // (message.delta notifications carry the reply piece by piece as it is
  // generated; this example waits for the stored reply.)
  const replies = [];
  let sentId = null;
  let found = null;
  const reply = new Promise((resolve) => { found = resolve; });
  wiz.onNotification = (note) => {
    if (note.method !== "message.created") return;
    replies.push(note.params.message);
    const answer = replies.find((m) => sentId !== null && m.reply_to === sentId);
    if (answer) found(answer);
  };
  await wiz.call("events.subscribe", { conversation_id: dm.id });
  const sent = await wiz.call("message.send", { conversation_id: dm.id, content: question });
  sentId = sent.message.id;
  wiz.onNotification({ method: "message.created", params: { message: sent.message } });
  return reply;
}

async function main() {
  const [agentName, question] = process.argv.slice(2);
  if (process.argv.length !== 4) {
    console.error("usage: node ask.mjs AGENT QUESTION");
    process.exit(2);
  }
  const wiz = new Wizd(socketPath());
  try {
    await wiz.ready;
    const reply = await ask(wiz, agentName, question);
    if (reply.kind === "error") {
      console.error(`ask.mjs: ${reply.content}`);
      process.exitCode = 1;
    } else {
      console.log(reply.content);
    }
  } catch (err) {
    console.error(`ask.mjs: ${err.message}`);
    process.exitCode = 1;
  } finally {
    wiz.close();
  }
}

main();
