-- wrk: POST /api/chat/session with a fresh guest id per request, the same
-- request for chatmem serve and the older Node.js backend (bench/http.py).
-- The guest id is a random version-4 UUID, as a page's crypto.randomUUID();
-- each wrk thread seeds its own generator, so threads never share ids.
function init(args)
  math.randomseed(os.time() * 1000 + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 1000)
end

local function uuid4()
  local template = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"
  return (template:gsub("[xy]", function(c)
    local v = (c == "x") and math.random(0, 15) or math.random(8, 11)
    return string.format("%x", v)
  end))
end

function request()
  local body = '{"userId":"' .. uuid4() .. '"}'
  return wrk.format("POST", "/api/chat/session", {["Content-Type"] = "application/json"}, body)
end

-- One line the runner parses; errors.status counts answers of 400 and above
-- (no response() callback: it would make wrk parse every body, for both alike).
function done(summary, latency, requests)
  local p = latency:percentile(99)
  io.write(string.format("CHATMEM_WRK requests=%d errors_status=%d p50_us=%d p99_us=%d mean_us=%.1f\n",
    summary.requests, summary.errors.status, latency:percentile(50), p, latency.mean))
end
