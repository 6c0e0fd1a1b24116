// Korean and English (issue 21, item 8). The page's language is the
// <html lang> the gateway chose (the studio_lang cookie, else
// Accept-Language, else Korean); the switch sets the cookie and reloads.

const messages = {
  ko: {
    studio: '스튜디오', signIn: '로그인', signOut: '로그아웃', email: '이메일', password: '비밀번호',
    signInWith: '{name}(으)로 로그인', signedInAs: '{name} ({role})', badLogin: '이메일 또는 비밀번호가 올바르지 않습니다.',
    dashboard: '대시보드', videos: '동영상', earnings: '수익', statements: '정산서', top: '인기 동영상',
    admin: '관리', runs: '정산 실행', imports: 'CSV 가져오기', users: '사용자', adjustments: '조정',
    closes: '월 마감·보류', withholding: '원천징수', webhooks: '웹훅', language: 'English',
    yesterday: '어제', monthToDate: '이번 달 누계', views: '조회수', watchTime: '시청 시간', adViews: '광고 조회수',
    earningsAmount: '수익', videoAmount: '동영상 수익', adAmount: '광고 수익', total: '합계',
    last30: '최근 30일', last90: '최근 90일', last365: '최근 365일', range: '기간',
    chartViews: '일별 조회수', chartEarnings: '일별 수익(원)', chartData: '차트 데이터',
    day: '일', week: '주', month: '월', period: '단위', date: '날짜', from: '시작일', to: '종료일', show: '보기',
    title: '제목', video: '동영상', state: '상태', originalViews: '원래 조회수', originalAdViews: '원래 광고 조회수',
    noData: '데이터가 없습니다.', loading: '불러오는 중…', downloadCsv: 'CSV 내려받기', sortBy: '{column} 기준 정렬',
    statement: '정산서', opening: '기초 잔액', restatements: '재정산', gross: '총액', payout: '지급액',
    incomeTax: '소득세', localTax: '지방소득세', net: '실지급액', closing: '기말 잔액', status: '상태',
    print: '인쇄', issuedAt: '발행일', paidAt: '지급일', reference: '지급 참조', carried: '이월 사유', hold: '보류 사유',
    settleDays: '정산 실행(재정산·백필)', queue: '대기열에 넣기', queued: '{n}건의 실행을 대기열에 넣었습니다.',
    run: '실행', rows: '행 수', startedAt: '시작', finishedAt: '종료', error: '오류', refresh: '새로 고침',
    csvFile: 'CSV 파일', upload: '가져오기', accepted: '반영된 행: {n}', rejected: '거부된 행', line: '줄', reason: '사유',
    role: '역할', createdAt: '생성일', more: '더 보기', name: '이름',
    forbidden: '이 페이지를 볼 권한이 없습니다.', signInFirst: '먼저 로그인하세요.', notFound: '페이지를 찾을 수 없습니다.',
    creatorId: '크리에이터 ID', videoId: '동영상 ID', create: '만들기', remove: '삭제', setHold: '보류 설정', releaseHold: '보류 해제',
    closeMonth: '월 마감', clawedBack: '환수액', events: '이벤트', url: 'URL', secret: '서명 비밀키(한 번만 표시)',
    metricViews: '조회수 순', metricWatch: '시청 시간 순', rank: '순위', value: '값', done: '완료했습니다.',
    failed: '실패: {message}', skip: '본문으로 건너뛰기', dayStates: '일별 상태', print_hint: '인쇄용 보기',
    'state.estimated': '추정', 'state.final': '확정', 'state.restated': '재정산됨',
    'run.queued': '대기', 'run.running': '실행 중', 'run.succeeded': '성공', 'run.failed': '실패',
    'role.viewer': '시청자', 'role.creator': '크리에이터', 'role.admin': '관리자',
  },
  en: {
    studio: 'Studio', signIn: 'Sign in', signOut: 'Sign out', email: 'Email', password: 'Password',
    signInWith: 'Sign in with {name}', signedInAs: '{name} ({role})', badLogin: 'Wrong email or password.',
    dashboard: 'Dashboard', videos: 'Videos', earnings: 'Earnings', statements: 'Statements', top: 'Top videos',
    admin: 'Admin', runs: 'Settlement runs', imports: 'CSV import', users: 'Users', adjustments: 'Adjustments',
    closes: 'Closes and holds', withholding: 'Withholding', webhooks: 'Webhooks', language: '한국어',
    yesterday: 'Yesterday', monthToDate: 'Month to date', views: 'Views', watchTime: 'Watch time', adViews: 'Ad views',
    earningsAmount: 'Earnings', videoAmount: 'Video earnings', adAmount: 'Ad earnings', total: 'Total',
    last30: 'Last 30 days', last90: 'Last 90 days', last365: 'Last 365 days', range: 'Range',
    chartViews: 'Views per day', chartEarnings: 'Earnings per day (won)', chartData: 'Chart data',
    day: 'Day', week: 'Week', month: 'Month', period: 'Period', date: 'Date', from: 'From', to: 'To', show: 'Show',
    title: 'Title', video: 'Video', state: 'State', originalViews: 'Original views', originalAdViews: 'Original ad views',
    noData: 'No data.', loading: 'Loading…', downloadCsv: 'Download CSV', sortBy: 'Sort by {column}',
    statement: 'Statement', opening: 'Opening balance', restatements: 'Restatements', gross: 'Gross', payout: 'Payout',
    incomeTax: 'Income tax', localTax: 'Local income tax', net: 'Net paid', closing: 'Closing balance', status: 'Status',
    print: 'Print', issuedAt: 'Issued', paidAt: 'Paid', reference: 'Payout reference', carried: 'Carried because', hold: 'Held because',
    settleDays: 'Settle days (re-run, backfill)', queue: 'Queue', queued: 'Queued {n} runs.',
    run: 'Run', rows: 'Rows', startedAt: 'Started', finishedAt: 'Finished', error: 'Error', refresh: 'Refresh',
    csvFile: 'CSV file', upload: 'Import', accepted: 'Rows applied: {n}', rejected: 'Rejected lines', line: 'Line', reason: 'Reason',
    role: 'Role', createdAt: 'Created', more: 'More', name: 'Name',
    forbidden: 'You may not see this page.', signInFirst: 'Sign in first.', notFound: 'No such page.',
    creatorId: 'Creator id', videoId: 'Video id', create: 'Create', remove: 'Delete', setHold: 'Hold payouts', releaseHold: 'Release hold',
    closeMonth: 'Close month', clawedBack: 'Clawed back', events: 'Events', url: 'URL', secret: 'Signing secret (shown once)',
    metricViews: 'By views', metricWatch: 'By watch time', rank: 'Rank', value: 'Value', done: 'Done.',
    failed: 'Failed: {message}', skip: 'Skip to content', dayStates: 'Day states', print_hint: 'Printable view',
    'state.estimated': 'estimated', 'state.final': 'final', 'state.restated': 'restated',
    'run.queued': 'queued', 'run.running': 'running', 'run.succeeded': 'succeeded', 'run.failed': 'failed',
    'role.viewer': 'viewer', 'role.creator': 'creator', 'role.admin': 'admin',
  },
};

/** The page's language: `ko` or `en`. */
export const lang = document.documentElement.lang === 'en' ? 'en' : 'ko';

/** The platform time zone (IANA), as the gateway announces it. */
export const zone =
  document.querySelector('meta[name="platform-time-zone"]')?.content || 'Asia/Seoul';

/** The message `key` in the page's language, `{name}` filled from `vars`. */
export function t(key, vars = {}) {
  const text = messages[lang][key] ?? messages.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
}

/** Switches language: remembered in a cookie the gateway reads. */
export function switchLanguage() {
  const next = lang === 'ko' ? 'en' : 'ko';
  document.cookie = `studio_lang=${next}; path=/studio; max-age=31536000; samesite=lax`;
  location.reload();
}

const wonFormat = new Intl.NumberFormat('ko-KR', { style: 'currency', currency: 'KRW' });
const numberFormat = new Intl.NumberFormat(lang === 'ko' ? 'ko-KR' : 'en-US');

/** Whole won as `₩1,097,137` in both languages. */
export const won = (amount) => wonFormat.format(amount);

/** A count with grouping. */
export const count = (n) => numberFormat.format(n);

/** Watch time in seconds as hours and minutes (`12시간 5분`, `12 h 5 min`). */
export function watchTime(seconds) {
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return lang === 'ko'
    ? `${numberFormat.format(hours)}시간 ${minutes}분`
    : `${numberFormat.format(hours)} h ${minutes} min`;
}

/** A day (YYYY-MM-DD) `offset` days from today in the platform time zone. */
export function platformDay(offset = 0) {
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: zone }).format(new Date());
  return addDays(today, offset);
}

/** `day` (YYYY-MM-DD) plus `n` days. */
export function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** An instant (RFC 3339) shown in the platform time zone. */
export function instant(text) {
  if (!text) return '';
  return new Intl.DateTimeFormat(lang === 'ko' ? 'ko-KR' : 'en-GB', {
    timeZone: zone, dateStyle: 'medium', timeStyle: 'short',
  }).format(new Date(text));
}
