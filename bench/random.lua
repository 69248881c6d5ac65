-- wrk script: POST /counter/obj-<random of N>/increment
local n = tonumber(os.getenv("OBJECTS") or "10000")
math.randomseed(os.time())
request = function()
  return wrk.format("POST", "/counter/obj-" .. math.random(1, n) .. "/increment")
end
