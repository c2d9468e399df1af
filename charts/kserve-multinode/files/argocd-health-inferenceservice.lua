-- Argo CD health check for serving.kserve.io/InferenceService (KServe 0.15-0.20), written for
-- RawDeployment / Standard mode with multi-node vLLM (head + worker Deployments); Serverless works too.
--
-- Embed as is under resource.customizations.health.serving.kserve.io_InferenceService in argocd-cm.
-- Argo CD runs custom checks in gopher-lua (Lua 5.1) with only the base and table libraries unless
-- resource.customizations.useOpenLibs.serving.kserve.io_InferenceService is "true": this script uses
-- neither the string nor the math library, so it needs no such setting.
--
-- Why not Argo CD's bundled check (resource_customizations/serving.kserve.io/InferenceService/health.lua
-- up to late 2025): it compared the number of True conditions from a fixed list with a constant. Raw
-- mode has only IngressReady, PredictorReady and Ready, which matched only when the object carried the
-- annotation serving.kserve.io/deploymentMode: RawDeployment (not "Standard", nor the cluster default
-- without annotation); and it read the Stopped=False condition KServe adds to running services since
-- 0.15.x as not ready (fixed in argoproj/argo-cd#25312). This check reads KServe's own aggregate, Ready,
-- which PredictorReady and IngressReady feed in every deployment mode.
--
-- Rules, first match wins:
--   1. no status                                            -> Progressing
--   2. Stopped=True (serving.kserve.io/stop)                -> Suspended
--   3. a failure reported by the controller                 -> Degraded
--   4. no conditions                                        -> Progressing
--   5. Ready=True, and PredictorReady=True when present     -> Healthy
--   6. anything else -> Progressing, with the first condition that is not True
-- status.observedGeneration is not compared with metadata.generation: KServe copies it from the head
-- Deployment (raw) or the Knative Service, so an edit that leaves those unchanged would never catch up.

hs = {}

-- Condition reasons that mean the controller gave up rather than that it is still waiting. Exact
-- names, plus the prefixes below: there is no substring search without the string library.
local FAILURE_REASONS = {
  InvalidGPUAllocation = true,       -- multi-node: GPUs of head + workers cannot cover TP x PP
  InvalidWorkerSpecNotSet = true,    -- multi-node: workerSpec without a multi-node ServingRuntime
  ProgressDeadlineExceeded = true,   -- Deployment (raw) or Revision (Serverless) timed out
  RevisionFailed = true,             -- Knative
  ContainerMissing = true,           -- Knative: image could not be resolved
  ModelLoadFailed = true,
  RuntimeUnhealthy = true,
  RuntimeDisabled = true,
  RuntimeNotRecognized = true,
  NoSupportingRuntime = true,
  CrashLoopBackOff = true,
  ImagePullBackOff = true,
  CreateContainerError = true,
  CreateContainerConfigError = true,
}
-- "Failed..." (FailedCreate from a ReplicaFailure, ...), "Invalid..." (InvalidSpec, ...), "Err..." (ErrImagePull).
local FAILURE_PREFIXES = { "Failed", "Invalid", "Err" }
-- modelStatus.transitionStatus values that block the rollout.
local FAILED_TRANSITIONS = { BlockedByFailedLoad = true, InvalidSpec = true }

local function nonempty(value)
  return type(value) == "string" and value ~= ""
end

-- True when text starts with prefix, by byte-wise comparison only (gopher-lua compares Go strings):
-- prefix <= text < prefix .. "\255" holds exactly for the texts that start with prefix.
local function starts_with(text, prefix)
  return text >= prefix and text < prefix .. "\255"
end

local function is_failure_reason(reason)
  if not nonempty(reason) then
    return false
  end
  if FAILURE_REASONS[reason] then
    return true
  end
  for _, prefix in ipairs(FAILURE_PREFIXES) do
    if starts_with(reason, prefix) then
      return true
    end
  end
  return false
end

-- "PredictorReady is False (InvalidGPUAllocation): the total required number of GPUs ..."
local function describe(condition)
  local text = tostring(condition.type) .. " is " .. tostring(condition.status)
  if nonempty(condition.reason) then
    text = text .. " (" .. condition.reason .. ")"
  end
  if nonempty(condition.message) then
    text = text .. ": " .. condition.message
  end
  return text
end

-- "ModelLoadFailed: ValueError: ... (exit code 1)"
local function describe_failure(info)
  local text = "failure"
  if nonempty(info.reason) then
    text = info.reason
  end
  if nonempty(info.message) then
    text = text .. ": " .. info.message
  end
  if type(info.exitCode) == "number" and info.exitCode ~= 0 then
    text = text .. " (exit code " .. tostring(info.exitCode) .. ")"
  end
  return text
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for InferenceService status"
  return hs
end

local conditions = {}
if type(status.conditions) == "table" then
  conditions = status.conditions
end
local by_type = {}
for _, condition in ipairs(conditions) do
  if condition.type ~= nil then
    by_type[condition.type] = condition
  end
end
local ready = by_type["Ready"]
local is_ready = ready ~= nil and ready.status == "True"

-- 2. Stopped on purpose: KServe deletes the workload and keeps the object.
local stopped = by_type["Stopped"]
if stopped ~= nil and stopped.status == "True" then
  hs.status = "Suspended"
  hs.message = "InferenceService is stopped"
  return hs
end

-- 3a. A condition False for a failure reason. Ready repeats its dependents' reason, so a
-- component condition (PredictorReady, ...) is reported in preference to Ready.
local failed_ready = nil
for _, condition in ipairs(conditions) do
  if condition.status == "False" and condition.type ~= "Stopped" and is_failure_reason(condition.reason) then
    if condition.type ~= "Ready" then
      hs.status = "Degraded"
      hs.message = describe(condition)
      return hs
    end
    failed_ready = condition
  end
end
if failed_ready ~= nil then
  hs.status = "Degraded"
  hs.message = describe(failed_ready)
  return hs
end

-- 3b. The model cannot be rolled out (failed load, invalid spec).
local model = status.modelStatus
local last_failure = nil
if type(model) == "table" and type(model.lastFailureInfo) == "table" then
  local info = model.lastFailureInfo
  if nonempty(info.reason) or nonempty(info.message) then
    last_failure = info
  end
end
if type(model) == "table" and FAILED_TRANSITIONS[model.transitionStatus] then
  hs.status = "Degraded"
  hs.message = "Model transition status is " .. model.transitionStatus
  if last_failure ~= nil then
    hs.message = hs.message .. "; last failure: " .. describe_failure(last_failure)
  end
  return hs
end

-- 3c. KServe never clears lastFailureInfo, so once Ready is True again it describes the past.
if last_failure ~= nil and not is_ready then
  hs.status = "Degraded"
  hs.message = "Last failure: " .. describe_failure(last_failure)
  return hs
end

-- 4.
if #conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for InferenceService status"
  return hs
end

-- 5. Ready aggregates PredictorReady and IngressReady; no Knative-only condition is needed.
local predictor = by_type["PredictorReady"]
if is_ready and (predictor == nil or predictor.status == "True") then
  hs.status = "Healthy"
  if nonempty(status.url) then
    hs.message = "InferenceService is ready at " .. status.url
  else
    hs.message = "InferenceService is ready"
  end
  return hs
end

-- 6. PredictorReady says most (IngressReady only waits for it), Ready least.
local waiting = nil
if predictor ~= nil and predictor.status ~= "True" then
  waiting = predictor
end
if waiting == nil then
  for _, condition in ipairs(conditions) do
    if waiting == nil and condition.status ~= "True" and condition.type ~= "Stopped" and condition.type ~= "Ready" then
      waiting = condition
    end
  end
end
if waiting == nil and ready ~= nil and not is_ready then
  waiting = ready
end
hs.status = "Progressing"
if waiting ~= nil then
  hs.message = describe(waiting)
else
  hs.message = "Waiting for the Ready condition"
end
return hs
