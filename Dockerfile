# mcp-front as a container: the standalone command, reading the config mounted at /config.json.
#
#   docker build -t mcp-front .        (the first stage compiles lib/; no local build needed)
#   docker run -p 8080:8080 -v $(pwd)/config.json:/config.json -e PROD_TOKEN mcp-front
#
# - `proxy.addr` must listen on every interface (":8080") for -p to reach it.
# - `-e PROD_TOKEN` passes the host's variable for `{"$env": "PROD_TOKEN"}`; values stay out of
#   the image and out of the config file.
# - Reload: `docker kill --signal=HUP <container>`. A single bind-mounted file does not see an
#   editor's rename-over-save; mount the directory (-v $(pwd)/conf:/conf, --config /conf/config.json)
#   to have file changes picked up as well.
# - With stdio servers started through `npx`, add `--init`: node as PID 1 does not reap the
#   grandchildren that a crashing wrapper leaves behind.

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci
COPY lib ./lib
RUN npm run build

FROM node:20-slim
# Also turns on the warning about token values written literally in the config.
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
# The proxy needs no privileges; its stdio servers inherit this user.
USER node
EXPOSE 8080
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["--config", "/config.json"]
