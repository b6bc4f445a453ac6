// The component library: Preact with htm templates (vendored, see VENDOR.md).
import { h, render } from '../vendor/preact.mjs';
import { useState, useEffect, useRef, useCallback, useMemo } from '../vendor/hooks.mjs';
import htm from '../vendor/htm.mjs';

export const html = htm.bind(h);
export { render, useState, useEffect, useRef, useCallback, useMemo };
