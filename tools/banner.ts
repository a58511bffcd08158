/**
 * What `npm start` prints once everything is up: where the API, the dashboard and the API docs are, and the first
 * commands to run, with the Authorization header when auth is on. The key itself is never printed (terminals and
 * their logs are kept): the commands read it from the shell's DOCKET_API_KEY, as the CLI does.
 */
export function startBanner(url: string, { auth }: { auth: boolean }): string[] {
  const header = auth ? ` -H "Authorization: Bearer $DOCKET_API_KEY"` : "";
  return [
    `docket is up: API at ${url}`,
    `  dashboard   ${url}/dashboard${auth ? "   (sign in with the admin key, DOCKET_API_KEY)" : ""}`,
    `  API docs    ${url}/docs   (OpenAPI: ${url}/openapi.json)`,
    ...(auth ? ["  auth is on: every call needs Authorization: Bearer <key> (the admin key is DOCKET_API_KEY)"] : []),
    "  a folder    id=$(npx docket submit ./contracts/ --task summarize)   # .txt .md .pdf .docx, scans .png .jpg .tiff",
    '              npx docket watch "$id" && npx docket results "$id" --dir out/',
    `  one text    curl -s ${url}/v1/jobs${header} -H 'content-type: application/json' -d '{"task":"summarize","input":{"text":"..."}}'`,
  ];
}
