// Sample images drawn by the page itself (no downloaded pictures): each draws on a 2D canvas.

const W = 320;
const H = 240;

function sunset(ctx) {
  const sky = ctx.createLinearGradient(0, 0, 0, H);
  sky.addColorStop(0, '#1e3a8a');
  sky.addColorStop(0.55, '#f97316');
  sky.addColorStop(1, '#fde68a');
  ctx.fillStyle = sky;
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = '#fef3c7';
  ctx.beginPath();
  ctx.arc(W * 0.62, H * 0.62, 38, 0, Math.PI * 2);
  ctx.fill();
  ctx.fillStyle = '#14532d';
  ctx.beginPath();
  ctx.moveTo(0, H);
  for (let x = 0; x <= W; x += 10) ctx.lineTo(x, H * 0.78 + Math.sin(x / 23) * 14 + Math.cos(x / 57) * 10);
  ctx.lineTo(W, H);
  ctx.closePath();
  ctx.fill();
}

function sketch(ctx) {
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, W, H);
  ctx.strokeStyle = '#111827';
  ctx.lineWidth = 3;
  ctx.lineCap = 'round';
  // A house, a tree and a sun, as line art.
  ctx.strokeRect(70, 120, 110, 80);
  ctx.beginPath();
  ctx.moveTo(60, 122); ctx.lineTo(125, 65); ctx.lineTo(190, 122);
  ctx.stroke();
  ctx.strokeRect(112, 160, 26, 40);
  ctx.strokeRect(82, 135, 20, 18);
  ctx.strokeRect(150, 135, 20, 18);
  ctx.beginPath(); ctx.moveTo(245, 200); ctx.lineTo(245, 140); ctx.stroke();
  ctx.beginPath(); ctx.arc(245, 118, 30, 0, Math.PI * 2); ctx.stroke();
  ctx.beginPath(); ctx.arc(275, 45, 18, 0, Math.PI * 2); ctx.stroke();
  for (let k = 0; k < 8; k += 1) {
    const a = (k * Math.PI) / 4;
    ctx.beginPath();
    ctx.moveTo(275 + Math.cos(a) * 24, 45 + Math.sin(a) * 24);
    ctx.lineTo(275 + Math.cos(a) * 33, 45 + Math.sin(a) * 33);
    ctx.stroke();
  }
  ctx.beginPath(); ctx.moveTo(20, 200); ctx.lineTo(300, 200); ctx.stroke();
}

function pattern(ctx) {
  const s = 20;
  for (let y = 0; y < H; y += s) {
    for (let x = 0; x < W; x += s) {
      const h = ((x * 0.9 + y * 1.3) % 360) | 0;
      ctx.fillStyle = ((x + y) / s) % 2 ? `hsl(${h} 70% 55%)` : `hsl(${(h + 180) % 360} 60% 30%)`;
      ctx.fillRect(x, y, s, s);
    }
  }
  ctx.strokeStyle = 'rgba(255,255,255,0.8)';
  ctx.lineWidth = 4;
  for (let r = 20; r < 200; r += 24) {
    ctx.beginPath();
    ctx.arc(W / 2, H / 2, r, 0, Math.PI * 2);
    ctx.stroke();
  }
}

export const SAMPLES = [
  { id: 'sunset', label: 'Sunset (gradient)', draw: sunset },
  { id: 'sketch', label: 'Line drawing', draw: sketch },
  { id: 'pattern', label: 'Pattern', draw: pattern },
];

/** A fresh canvas with the sample drawn on it. */
export function drawSample(sample) {
  const c = document.createElement('canvas');
  c.width = W;
  c.height = H;
  sample.draw(c.getContext('2d'));
  return c;
}
