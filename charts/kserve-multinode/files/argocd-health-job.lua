-- Argo CD health check for batch/Job (the model download Job).
--
-- Embed as is under resource.customizations.health.batch_Job in argocd-cm. Uses only the base and
-- table libraries, which is all Argo CD opens for custom checks unless useOpenLibs is set.
--
--   Failed=True (or FailureTarget=True, set first since Kubernetes 1.31)  -> Degraded
--   Complete=True                                                        -> Healthy
--   spec.suspend or Suspended=True                                       -> Suspended
--   anything else                                                        -> Progressing, with counts

hs = {}

local function nonempty(value)
  return type(value) == "string" and value ~= ""
end

local function count(value)
  if type(value) == "number" then
    return value
  end
  return 0
end

local status = obj.status
if type(status) ~= "table" then
  status = {}
end
local conditions = {}
if type(status.conditions) == "table" then
  conditions = status.conditions
end

for _, condition in ipairs(conditions) do
  if condition.status == "True" and (condition.type == "Failed" or condition.type == "FailureTarget") then
    hs.status = "Degraded"
    if nonempty(condition.reason) and nonempty(condition.message) then
      hs.message = condition.reason .. ": " .. condition.message
    elseif nonempty(condition.message) then
      hs.message = condition.message
    elseif nonempty(condition.reason) then
      hs.message = condition.reason
    else
      hs.message = "Job failed"
    end
    return hs
  end
end

for _, condition in ipairs(conditions) do
  if condition.status == "True" and condition.type == "Complete" then
    hs.status = "Healthy"
    hs.message = "Job completed (" .. tostring(count(status.succeeded)) .. " succeeded)"
    return hs
  end
end

local suspended = type(obj.spec) == "table" and obj.spec.suspend == true
for _, condition in ipairs(conditions) do
  if condition.status == "True" and condition.type == "Suspended" then
    suspended = true
  end
end
if suspended then
  hs.status = "Suspended"
  hs.message = "Job is suspended"
  return hs
end

hs.status = "Progressing"
hs.message = "Job in progress: " .. tostring(count(status.active)) .. " active, "
  .. tostring(count(status.succeeded)) .. " succeeded"
if count(status.failed) > 0 then
  hs.message = hs.message .. ", " .. tostring(count(status.failed)) .. " failed"
end
return hs
