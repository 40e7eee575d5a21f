-- wrk script for benches/api-load/run: POSTs a Carbon API request with
-- the API key and customer id from the environment. The body varies per
-- request: /user_files_v2 walks pages of 100 files (offsets 0 to 4,900),
-- /embeddings cycles through queries (words of the site's titles).
local key = os.getenv("CONFSYNC_KEY")
local customer = os.getenv("CONFSYNC_CUSTOMER")
local kind = os.getenv("CONFSYNC_REQUEST")
local words = {}
for w in string.gmatch(os.getenv("CONFSYNC_QUERIES") or "", "[^,]+") do
  table.insert(words, w)
end
local n = 0
-- CONFSYNC_FILES_PAGES: how many pages of files are walked (50: offsets 0
-- to 4,900; 1: the first page only).
local pages = tonumber(os.getenv("CONFSYNC_FILES_PAGES") or "") or 50
-- CONFSYNC_THINK_MS: each connection waits this long, on average, before
-- each request (a random wait, exponential, as of clients that poll), so
-- that 200 connections offer a rate rather than all they can.
local think = tonumber(os.getenv("CONFSYNC_THINK_MS") or "")
if think then
  math.randomseed(os.time())
  delay = function()
    return -think * math.log(1 - math.random())
  end
end

request = function()
  n = n + 1
  local body
  if kind == "files" then
    body = string.format(
      '{"pagination": {"limit": 100, "offset": %d}, "order_by": "created_at"}', (n % pages) * 100)
  else
    body = string.format('{"query": "%s", "k": 10}', words[(n % #words) + 1])
  end
  return wrk.format("POST", nil, {
    ["authorization"] = "Bearer " .. key,
    ["customer-id"] = customer,
    ["content-type"] = "application/json",
  }, body)
end

-- wrk hands every response's body to `response` as a Lua string when the
-- script defines it: 125 KB a page of files, copied on the cores the server
-- shares. wrk counts non-2xx answers itself ("Non-2xx or 3xx responses"),
-- so the bodies of the first errors are shown only when asked
-- (CONFSYNC_SHOW_ERRORS=1).
if os.getenv("CONFSYNC_SHOW_ERRORS") then
  local errors = 0
  response = function(status, headers, body)
    if status ~= 200 then
      errors = errors + 1
      if errors <= 3 then io.stderr:write("HTTP " .. status .. ": " .. body .. "\n") end
    end
  end
end
