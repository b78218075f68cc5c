// A real browser's CORS preflight against the proxy (npm run test:browser; needs Debian's
// chromium at /usr/bin/chromium). A page on one loopback origin calls the proxy on another, with
// the headers browser clients send: W3C Trace Context / Baggage and the 2026-07-28 Mcp-* headers.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import express from 'express';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { configWith, DEV_TOKEN, startFront, startJsonRpcUpstream, type Front, type JsonRpcUpstream } from '../helpers/servers';

const CHROMIUM = '/usr/bin/chromium';

let upstream: JsonRpcUpstream;
let front: Front;
let site: http.Server;
let profile: string;
let browser: Browser;
let page: Page;
/** The page's origin, and the proxy's route as the page addresses it (another origin). */
let pageOrigin: string;
let proxyUrl: string;

beforeAll(async () => {
  site = http.createServer(express().get('/', (_req, res) => void res.type('html').send('<!doctype html><title>client</title>')));
  site.listen(0, '127.0.0.1');
  await once(site, 'listening');
  pageOrigin = `http://127.0.0.1:${(site.address() as net.AddressInfo).port}`;

  upstream = await startJsonRpcUpstream();
  front = await startFront(configWith({ up: { url: upstream.url } }, { cors: { allowedOrigins: [pageOrigin] } }));
  proxyUrl = `http://localhost:${new URL(front.origin).port}/up/mcp`;

  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-front-chromium-'));
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
    ],
  });
  page = await browser.newPage();
  await page.goto(pageOrigin);
});

afterAll(async () => {
  await browser?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  await front?.close();
  await upstream?.close();
  if (site) await new Promise<void>((resolve) => site.close(() => resolve()));
});

/** A cross-origin POST from the page; its status and body, or the browser's error when refused. */
function postFromPage(headers: Record<string, string>): Promise<{ status?: number; body?: unknown; error?: string }> {
  return page.evaluate(
    async (url, headers) => {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers,
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get-weather', arguments: { region: 'eu' } } }),
        });
        return { status: res.status, body: await res.json() };
      } catch (err) {
        return { error: String(err) };
      }
    },
    proxyUrl,
    headers,
  );
}

const clientHeaders = () => ({
  Authorization: `Bearer ${DEV_TOKEN}`,
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
  'MCP-Protocol-Version': '2026-07-28',
  'Mcp-Method': 'tools/call',
  'Mcp-Name': 'get-weather',
  'Mcp-Param-Region': 'eu',
  'Mcp-Param-Foo': 'bar',
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  tracestate: 'vendor=opaque',
  baggage: 'user.tier=gold',
});

test('a page on another origin passes the preflight with trace-context and Mcp-* headers, and its request goes through', async () => {
  const before = upstream.requests.length;
  const out = await postFromPage(clientHeaders());
  expect(out).toEqual({ status: 200, body: { jsonrpc: '2.0', id: 1, result: {} } });
  expect(upstream.requests.length).toBe(before + 1);
});

test('a header outside the allowed set fails the preflight: the request is never sent', async () => {
  const before = upstream.requests.length;
  const out = await postFromPage({ ...clientHeaders(), 'X-Evil': '1' });
  expect(out.error).toMatch(/Failed to fetch/);
  expect(upstream.requests.length).toBe(before);
});
