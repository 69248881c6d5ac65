-- wrk script: POST /counter/hot/increment
request = function()
  return wrk.format("POST", "/counter/hot/increment")
end
